"""What θ_pre/θ_grok analysis needs of a TOFU-style run (``LLMDomain.analysis_data``).

* data: the run's forget split and its retain split as ``(input_ids, labels)`` tensors, right-padded to one
  length (labels ``-100`` on the prompt and the padding); ``train`` is both; ``test`` the held-out phrasings
  of retain authors' facts (``gen_acc``'s set) when the run has them;
* loss: answer-token cross-entropy, mean over a row's answer tokens, then mean over rows (so batches weigh
  by their number of rows, as the gradient and curvature code expects);
* representation: the last hidden state (the input of the LM head) averaged over a row's answer positions.

The model is called on ``input_ids`` alone: with right padding and causal attention the padding cannot
change the logits at earlier positions, and every padded position is ``-100`` in the labels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .._domain import AnalysisData
from .._resolve import Source
from ..errors import UsageError
from .qa import IGNORE_INDEX
from .run_data import LLMRunData, forget_split_of

__all__ = ["answer_token_loss", "eager_attention", "llm_analysis_data", "pooled_answer_states"]


def answer_token_loss(output: Any, labels: torch.Tensor) -> torch.Tensor:
    """Mean over rows of each row's mean next-token NLL on its answer tokens (``labels != -100``)."""
    logits = getattr(output, "logits", output)[:, :-1]
    targets = labels[:, 1:].to(logits.device)
    valid = targets != IGNORE_INDEX
    nll = F.cross_entropy(logits.transpose(1, 2), targets.clamp_min(0), reduction="none")
    return ((nll * valid).sum(1) / valid.sum(1).clamp_min(1)).mean()


@torch.no_grad()
def pooled_answer_states(model: torch.nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """[rows, hidden] float64: the last hidden state averaged over the positions that predict answer tokens."""
    input_ids, labels = inputs
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        states = model(input_ids.to(device), output_hidden_states=True).hidden_states[-1][:, :-1]
    finally:
        model.train(was_training)
    weights = (labels[:, 1:] != IGNORE_INDEX).to(device, torch.float64).unsqueeze(-1)  # position t predicts t+1
    return ((states.to(torch.float64) * weights).sum(1) / weights.sum(1).clamp_min(1)).cpu()


def eager_attention(model: Any) -> Any:
    """The model with eager attention: PyTorch's fused CPU attention has no double backward (Hessian-vector products)."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:  # older transformers read the setting at each forward pass
        model.config._attn_implementation = "eager"
    return model


def _tensors(data: LLMRunData, datasets: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each dataset as one (input_ids, labels) batch, all padded to the longest row of any of them."""
    rows = [[ds[i] for i in range(len(ds))] for ds in datasets]
    batch = data.collator([r for part in rows for r in part])
    out, at = [], 0
    for part in rows:
        out.append((batch["input_ids"][at : at + len(part)], batch["labels"][at : at + len(part)]))
        at += len(part)
    return out


def llm_analysis_data(source: Source, *, seed: int, forget_rate: float | None = None, forget_split: str | None = None,
                      loss: str = "preset", layer: str | None = None) -> AnalysisData:
    """Forget/retain/train/test of a tofu run for one forget split, with the answer-token loss (see module doc)."""
    if loss not in ("preset", "ce"):
        raise UsageError(f"TOFU-style runs are analysed with their training loss (answer-token cross-entropy), not {loss!r}")
    if layer is not None:
        raise UsageError("TOFU-style runs compare the last hidden state (pooled over answer tokens); layer= is for vision runs")
    data = LLMRunData(source, forget_split_of({"forget_rate": forget_rate, "forget_split": forget_split}))
    parts = [data.forget, data.retain] + ([data.generalization] if data.generalization is not None else [])
    tensors = _tensors(data, parts)
    forget, retain = tensors[0], tensors[1]
    train = (torch.cat([forget[0], retain[0]]), torch.cat([forget[1], retain[1]]))
    which = {"forget": "forget", "retain": "retain", "test": "generalization"}
    return AnalysisData(
        forget=forget, retain=retain, train=train, test=tensors[2] if len(tensors) > 2 else None,
        loss_fn=answer_token_loss, score=lambda model, part: data.score(model, which[part]),
        features=pooled_answer_states, layer="last hidden state (mean over answer tokens)",
        loss_name="answer-token ce", test_set="held-out phrasings of retain authors' facts (gen_acc)",
        prepare_model=eager_attention,
    )
