"""Loss helpers of the LLM unlearning methods, importable on their own (as OU users ask for).

Each function follows open-unlearning's ``src/trainer/utils.py`` (snapshot d3d7cf9) and
``src/trainer/unlearn/rmu.py``; ``tests/test_llm_methods.py`` checks each against a hand computation:

* :func:`compute_batch_nll`: NLL **summed** per sequence (not ``model(**x).loss``, which is a mean);
* :func:`compute_kl_divergence`: ``kl_div(log_softmax(model), log_softmax(ref), batchmean, log_target)``
  over all positions, padding included (OU does not mask it);
* :func:`compute_dpo_loss`: ``-2/β · logσ(β·(log_ratio_win − log_ratio_lose))``, mean over the batch;
  NPO is the ``win=None`` case;
* :func:`simnpo_loss`: ``-2/β · logσ(β·(NLL_sum/len − δ))`` with ``len`` = labels ≠ −100 (unshifted,
  as OU counts it);
* :func:`activation_mse`: RMU's masked activation MSE, by default exactly as OU's
  ``RMU.compute_activation_loss`` (see its docstring for the broadcast this keeps).

Only torch is imported; the models are anything returning ``.logits`` (and ``.loss`` for NLL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATION_REDUCTIONS",
    "MODEL_KEYS",
    "activation_mse",
    "compute_batch_nll",
    "compute_dpo_loss",
    "compute_kl_divergence",
    "dpo_from_nll",
    "forward_with_cache",
    "model_inputs",
    "npo_loss",
    "sequence_nll",
    "simnpo_from_nll",
    "simnpo_loss",
]

#: the keys OU hands to the model (``index`` and other collator extras are dropped)
MODEL_KEYS = ("input_ids", "attention_mask", "labels")


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The ``input_ids``/``attention_mask``/``labels`` of a batch, as OU selects them before a forward pass."""
    return {k: batch[k] for k in MODEL_KEYS if k in batch}


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sequence summed next-token NLL ``[B]`` from logits ``[B,T,V]`` and labels ``[B,T]`` (−100 ignored)."""
    shifted_labels = labels[..., 1:].contiguous()
    shifted_logits = logits[..., :-1, :].contiguous()
    loss = nn.CrossEntropyLoss(ignore_index=-100, reduction="none")
    return loss(shifted_logits.transpose(-1, -2), shifted_labels).sum(dim=-1)


def compute_batch_nll(model: nn.Module, inputs: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
    """``(NLL summed per sequence [B], outputs)``; OU's ``compute_batch_nll``."""
    outputs = model(**model_inputs(inputs))
    return sequence_nll(outputs.logits, inputs["labels"].to(outputs.logits.device)), outputs


def compute_kl_divergence(
    model: nn.Module, ref_model: nn.Module, inputs: Mapping[str, Any]
) -> tuple[torch.Tensor, Any]:
    """``(KL(ref ‖ model) per row, batchmean; outputs)``: OU's retain term for ``retain_loss_type=KL``."""
    inputs = model_inputs(inputs)
    with torch.no_grad():
        ref_logits = ref_model(**inputs).logits
    ref_logp = F.log_softmax(ref_logits, dim=-1).view(-1, ref_logits.shape[-1])
    outputs = model(**inputs)
    cur_logp = F.log_softmax(outputs.logits, dim=-1).view(-1, outputs.logits.shape[-1])
    return F.kl_div(cur_logp, ref_logp.to(cur_logp.device), reduction="batchmean", log_target=True), outputs


def dpo_from_nll(
    beta: float,
    win_nll: torch.Tensor | None = None,
    win_ref_nll: torch.Tensor | None = None,
    lose_nll: torch.Tensor | None = None,
    lose_ref_nll: torch.Tensor | None = None,
) -> torch.Tensor:
    """The DPO/NPO objective from per-sequence NLLs: ``-2/β · mean logσ(β·(r_win − r_lose))``, r = −(NLL − NLL_ref)."""
    win_ratio: torch.Tensor | float = 0.0
    lose_ratio: torch.Tensor | float = 0.0
    if win_nll is not None:
        assert win_ref_nll is not None, "a win NLL needs its reference NLL"
        win_ratio = -(win_nll - win_ref_nll)
    if lose_nll is not None:
        assert lose_ref_nll is not None, "a lose NLL needs its reference NLL"
        lose_ratio = -(lose_nll - lose_ref_nll)
    margin = beta * (win_ratio - lose_ratio)
    assert isinstance(margin, torch.Tensor), "give at least one of win_nll, lose_nll"
    return -2 / beta * F.logsigmoid(margin).mean()


def compute_dpo_loss(
    model: nn.Module,
    ref_model: nn.Module,
    win_inputs: Mapping[str, Any] | None = None,
    lose_inputs: Mapping[str, Any] | None = None,
    beta: float = 1.0,
) -> tuple[torch.Tensor, tuple[Any, Any]]:
    """OU's ``compute_dpo_loss``: returns ``(loss, (win_outputs, lose_outputs))``."""
    if win_inputs is None and lose_inputs is None:
        raise ValueError("compute_dpo_loss needs win_inputs or lose_inputs")
    nll: dict[str, torch.Tensor] = {}
    win_outputs = lose_outputs = None
    if win_inputs is not None:
        nll["win_nll"], win_outputs = compute_batch_nll(model, win_inputs)
        with torch.no_grad():
            nll["win_ref_nll"] = compute_batch_nll(ref_model, win_inputs)[0].to(nll["win_nll"].device)
    if lose_inputs is not None:
        nll["lose_nll"], lose_outputs = compute_batch_nll(model, lose_inputs)
        with torch.no_grad():
            nll["lose_ref_nll"] = compute_batch_nll(ref_model, lose_inputs)[0].to(nll["lose_nll"].device)
    return dpo_from_nll(beta, **nll), (win_outputs, lose_outputs)


def npo_loss(
    model: nn.Module, ref_model: nn.Module, inputs: Mapping[str, Any], beta: float = 0.1
) -> tuple[torch.Tensor, Any]:
    """NPO: ``-2/β · mean logσ(β·(NLL_θ − NLL_ref))``; equals ``2/β · log 2`` while model == reference."""
    loss, (_, outputs) = compute_dpo_loss(model, ref_model, win_inputs=None, lose_inputs=inputs, beta=beta)
    return loss, outputs


def simnpo_from_nll(
    nll_sum: torch.Tensor, lengths: torch.Tensor, beta: float, delta: float = 0.0
) -> torch.Tensor:
    """SimNPO from per-sequence summed NLLs and answer lengths: ``-2/β · mean logσ(β·(NLL/len − δ))``."""
    return -F.logsigmoid(beta * (nll_sum / lengths - delta)).mean() * 2 / beta


def simnpo_loss(
    model: nn.Module, inputs: Mapping[str, Any], beta: float = 4.5, delta: float = 0.0
) -> tuple[torch.Tensor, Any]:
    """OU's SimNPO forget term (reference-free, length-normalised)."""
    nll, outputs = compute_batch_nll(model, inputs)
    lengths = (inputs["labels"] != -100).sum(-1).to(nll.device)
    return simnpo_from_nll(nll, lengths, beta, delta), outputs


#: ``activation_mse`` reductions: OU's (the default) and the per-sequence mean (opt-in)
ACTIVATION_REDUCTIONS = ("ou", "per_sequence")


def activation_mse(
    activation: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, reduction: str = "ou"
) -> torch.Tensor:
    """RMU's masked activation MSE. ``s_i`` = Σ over masked tokens of the feature-mean squared error, ``n_i`` = their count.

    * ``"ou"`` (default): OU's ``compute_activation_loss`` divides the ``[B]`` sums by a ``[B, 1]``
      count, which broadcasts to ``[B, B]``; its mean is ``mean_i(s_i) · mean_j(1/n_j)``. This equals
      the per-sequence mean only when every sequence has the same number of masked tokens.
    * ``"per_sequence"``: ``mean_i(s_i / n_i)``, each sequence's own mean (what RMU's formula intends).
    """
    if reduction not in ACTIVATION_REDUCTIONS:
        raise ValueError(f"activation loss reduction must be one of {ACTIVATION_REDUCTIONS}, got {reduction!r}")
    squared = F.mse_loss(activation, target, reduction="none")  # [B, T, D]
    per_seq = (squared * mask.unsqueeze(-1).expand_as(squared)).mean(dim=2).sum(dim=1)  # [B]
    if reduction == "ou":
        return (per_seq / mask.sum(dim=-1, keepdim=True)).mean()  # [B] / [B, 1] -> [B, B], as OU
    return (per_seq / mask.sum(dim=-1)).mean()


def forward_with_cache(
    model: nn.Module, inputs: Mapping[str, Any], module: nn.Module, *, no_grad: bool = True
) -> tuple[torch.Tensor, Any]:
    """Run ``model`` and return ``(output of module, model outputs)``; the hook is always removed."""
    cache: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        cache.append(output[0] if isinstance(output, tuple) else output)

    handle = module.register_forward_hook(hook)
    try:
        with torch.set_grad_enabled(not no_grad):
            outputs = model(**model_inputs(inputs))
    finally:
        handle.remove()
    return cache[0], outputs
