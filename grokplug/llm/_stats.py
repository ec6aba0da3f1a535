"""Batched per-sample statistics of a causal LM on QA rows, computed as open-unlearning computes them.

Everything TOFU scores is derived from two passes, both in eval mode under ``torch.no_grad`` with the
model's mode restored:

* :func:`answer_stats`, teacher forced (right padding, OU's collator): per (question, answer) pair the
  average NLL over the labelled tokens (``labels != -100``, EOS included; OU ``evaluate_probability``),
  and, over the same tokens with the final (EOS) label left out (OU ``tokenwise_logprobs``), the token
  log-probs, the argmax ids and the label ids;
* :func:`generate_answers`, greedy generation (left padding, ``pad_token_id = eos``, cut at EOS) with
  the ground truth recovered from the labels as OU's ``eval_text_similarity`` does.

Tokenisation is OU's, through :mod:`grokplug.llm.qa`. Batches are formed from length-sorted items (less
padding); ``per_sample=True`` runs the same code one item at a time, in row order, for throughput
comparisons. Log-probs are computed in float32 whatever the model dtype.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import DivergedError, UsageError
from .qa import IGNORE_INDEX, DataCollatorForSupervisedDataset, QADataset, QATemplate

__all__ = ["DEFAULT_TEMPLATE", "AnswerStats", "answer_stats", "generate_answers", "model_sha256", "rows_sha256",
           "tokenizer_sha256"]

DEFAULT_TEMPLATE = QATemplate()  # OU's non-chat tags: "Question: {q}\nAnswer: "


@dataclass(frozen=True)
class AnswerStats:
    """Teacher-forced statistics of one (question, answer) pair."""

    avg_nll: float  # sum of token CE / number of labelled tokens (EOS included), OU's avg_loss
    num_tokens: int  # labelled tokens, EOS included
    token_logprobs: np.ndarray  # log p(label) per answer token, final (EOS) label excluded
    argmax: np.ndarray  # teacher-forced argmax id at those positions
    labels: np.ndarray  # label id at those positions
    text: str  # the labelled tokens decoded with special tokens skipped (OU's zlib text)

    @property
    def prob(self) -> float:
        return float(np.exp(-self.avg_nll))


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[torch.device]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


def _batches(items: Sequence[dict[str, Any]], batch_size: int, per_sample: bool,
             length: Callable[[dict[str, Any]], int]) -> Iterator[list[int]]:
    """Positions of ``items`` per batch: row order one by one, or longest-first length-sorted batches."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, not {batch_size}")
    if per_sample:
        yield from ([i] for i in range(len(items)))
        return
    order = sorted(range(len(items)), key=lambda i: -length(items[i]))  # stable: ties keep row order
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _flat_items(ds: QADataset) -> tuple[list[dict[str, Any]], list[tuple[int, int | None]]]:
    """Every tokenised pair, with (row position, answer position or None for a single answer)."""
    items: list[dict[str, Any]] = []
    where: list[tuple[int, int | None]] = []
    for row in range(len(ds)):
        item = ds[row]
        if "input_ids" in item:
            items.append(item)
            where.append((row, None))
        else:  # list answer: {0: item, 1: item, ...}
            for j in sorted(item):
                items.append(item[j])
                where.append((row, j))
    return items, where


def answer_stats(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: Any,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    batch_size: int = 32,
    max_length: int = 512,
    template: QATemplate = DEFAULT_TEMPLATE,
    per_sample: bool = False,
) -> list[Any]:
    """Per row an :class:`AnswerStats`, or a list of them when ``rows[answer_key]`` is a list of answers."""
    ds = QADataset(rows, tokenizer, question_key=question_key, answer_key=answer_key,
                   max_length=max_length, template=template)
    items, where = _flat_items(ds)
    collate = DataCollatorForSupervisedDataset(tokenizer, padding_side="right")
    flat: list[AnswerStats | None] = [None] * len(items)
    with _eval_mode(model) as device:
        for idx in _batches(items, batch_size, per_sample, lambda it: len(it["input_ids"])):
            batch = collate([items[i] for i in idx])
            for i, stats in zip(idx, _forward_stats(model, tokenizer, batch, device), strict=True):
                flat[i] = stats
    out: list[Any] = [None] * len(ds)
    for (row, j), entry in zip(where, flat, strict=True):  # every slot was filled by the batches above
        if j is None:
            out[row] = entry
        else:
            out[row] = (out[row] or []) + [entry]
    return out


def _forward_stats(model: torch.nn.Module, tokenizer: Any, batch: dict[str, torch.Tensor],
                   device: torch.device) -> list[AnswerStats]:
    labels = batch["labels"].to(device)
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    logits = logits[:, :-1].float()
    if not torch.isfinite(logits).all():
        raise DivergedError("the model outputs NaN or infinite logits")
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    logprobs = logits.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
    n_tokens = (labels != IGNORE_INDEX).sum(-1)
    avg_nll = torch.where(mask, -logprobs, 0.0).sum(-1) / n_tokens  # 0 tokens -> nan, as OU
    argmax = logits.argmax(-1)
    # one device->host copy per batch, then cheap numpy slicing per item
    lp, am, tg, mk = (t.cpu().numpy() for t in (logprobs.double(), argmax, targets, mask))
    avg_nll_list, n_tokens_list = avg_nll.cpu().tolist(), n_tokens.cpu().tolist()
    positions = [np.flatnonzero(row) for row in mk]
    texts = tokenizer.batch_decode([tg[i, pos].tolist() for i, pos in enumerate(positions)], skip_special_tokens=True)
    out = []
    for i, pos in enumerate(positions):
        pos = pos[:-1]  # OU leaves the final (EOS) prediction out of the token-wise statistics
        out.append(AnswerStats(avg_nll=float(avg_nll_list[i]), num_tokens=int(n_tokens_list[i]), token_logprobs=lp[i, pos],
                               argmax=am[i, pos], labels=tg[i, pos], text=texts[i]))
    return out


def generate_answers(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: Any,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    batch_size: int = 32,
    max_new_tokens: int = 200,
    max_length: int = 512,
    template: QATemplate = DEFAULT_TEMPLATE,
    per_sample: bool = False,
) -> list[dict[str, str]]:
    """Greedy answers per row: ``{"input", "ground_truth", "generation"}`` as OU's ``eval_text_similarity``."""
    if max_new_tokens < 1:
        raise UsageError(f"max_new_tokens must be >= 1, not {max_new_tokens}")
    eos = tokenizer.eos_token_id
    ds = QADataset(rows, tokenizer, question_key=question_key, answer_key=answer_key,
                   max_length=max_length, template=template, predict_with_generate=True)
    items = [ds[i] for i in range(len(ds))]
    if items and "input_ids" not in items[0]:
        raise UsageError(f"generation needs one answer per row; {answer_key!r} holds lists")
    collate = DataCollatorForSupervisedDataset(tokenizer, padding_side="left")
    out: list[dict[str, str]] = [{} for _ in items]
    decode_kw = {"skip_special_tokens": True, "clean_up_tokenization_spaces": True}
    eos_text = tokenizer.decode([eos]) if eos is not None else ""
    # OU keeps the model's own stop ids (e.g. Llama-3's <|eot_id|>) and only sets pad = eos
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stop = configured if configured is not None else eos
    stop_set = set(stop if isinstance(stop, list) else [stop]) | {eos}
    with _eval_mode(model) as device:
        for idx in _batches(items, batch_size, per_sample, lambda it: len(it["input_ids"])):
            batch = collate([items[i] for i in idx])
            input_ids = batch["input_ids"].to(device)
            gen = model.generate(  # type: ignore[operator]  # transformers' generate, typed as a Tensor attribute
input_ids, attention_mask=batch["attention_mask"].to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=eos, eos_token_id=stop,
                                 use_cache=True)[:, input_ids.shape[1]:].cpu()
            for row, i in enumerate(idx):
                ids = gen[row].tolist()
                ends = [k for k, t in enumerate(ids) if t in stop_set]
                ids = ids[:ends[0]] if ends else ids
                text = tokenizer.decode(ids, **decode_kw)
                if eos_text and eos_text in text:  # OU also cuts the decoded text at the EOS string
                    text = text.split(eos_text)[0]
                prompt = tokenizer.decode(items[i]["input_ids"].tolist(), **decode_kw)
                full = tokenizer.decode([t for t in items[i]["labels"].tolist() if t != IGNORE_INDEX], **decode_kw)
                out[i] = {"input": prompt, "ground_truth": full.replace(prompt, "").strip(),
                          "generation": text.strip()}
    return out


def model_sha256(model: torch.nn.Module) -> str:
    """Hash of the state dict: names, dtypes, shapes and raw bytes, in sorted-name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def rows_sha256(rows: Any) -> str:
    """Hash of a split's rows (a ``datasets.Dataset`` or a sequence of dicts), order-sensitive."""
    data = rows.to_list() if hasattr(rows, "to_list") else [dict(r) for r in rows]
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def tokenizer_sha256(tokenizer: Any) -> str:
    """Hash of a tokenizer's full definition (fast: its JSON; slow: its vocabulary) and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # truncation/padding are per-call state that encoding sets, not the definition
        spec = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        body = json.dumps(spec, sort_keys=True)
    else:
        body = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    special = json.dumps({"eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id,
                          "map": {k: str(v) for k, v in tokenizer.special_tokens_map.items()}}, sort_keys=True)
    return hashlib.sha256((body + "\n" + special).encode()).hexdigest()
