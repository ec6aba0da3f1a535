"""Forget/retain gradient alignment (as in the paper, arXiv 2512.03437, §5).

ḡ_F and ḡ_R are the mean loss gradients over the forget and the retain set. A gradient-ascent step
θ + ηḡ_F changes the retain loss by ≈ η⟨ḡ_R, ḡ_F⟩, so their cosine predicts collateral damage:
**cos > 0 is the damaging sign for ascent-style methods** (GA, GradDiff's forget term, ∇τ), since an
ascent step on the forget set then raises the retain loss; cos < 0 means the same step lowers it. We
report |cos| and its sign separately: at memorization the subset gradients can partly cancel
(negative cosine) while the full gradient sits near its weight-decay equilibrium.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import UsageError

__all__ = ["grad_alignment", "labelled_batches", "mean_gradient"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Data = DataLoader | Dataset | tuple[torch.Tensor, torch.Tensor]


def labelled_batches(data: Data) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches in a fixed order: an (x, y) tuple is one batch; loaders are read unshuffled."""
    if isinstance(data, tuple):
        yield data[0], data[1]
        return
    if isinstance(data, DataLoader):  # dataset order: deterministic, and never advances a training shuffle
        data = DataLoader(data.dataset, batch_size=data.batch_size or 256, shuffle=False, collate_fn=data.collate_fn)
    else:
        data = DataLoader(data, batch_size=256, shuffle=False)
    for x, y in data:  # noqa: UP028 - collate gives lists; hand out (x, y) tuples
        yield x, y


@contextlib.contextmanager
def evaluating(model: nn.Module, dtype: torch.dtype | None) -> Iterator[nn.Module]:
    """An eval-mode model to differentiate: a ``dtype`` copy when that differs, else the model itself
    (its train/eval mode restored afterwards). Gradients are taken with ``autograd.grad``, so no
    ``.grad`` of the caller's model is touched."""
    if dtype is not None and any(p.dtype != dtype for p in model.parameters()):
        yield copy.deepcopy(model).to(dtype).eval()
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def to_model_input(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    param = next(model.parameters())
    x = x.to(param.device)
    return x.to(param.dtype) if x.is_floating_point() else x


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def mean_gradient(model: nn.Module, data: Data, loss_fn: LossFn) -> tuple[dict[str, torch.Tensor], float, int]:
    """Float64 mean gradient of ``loss_fn`` over ``data`` per parameter name, the mean loss and the count.

    ``loss_fn`` returns the batch *mean*; batches are weighted by their size. Parameters the loss does
    not reach are left out (no gradient).
    """
    named = trainable(model)
    sums: dict[str, torch.Tensor] = {}
    total_loss, count = 0.0, 0
    for x, y in labelled_batches(data):
        x, y = to_model_input(x, model), y.to(next(model.parameters()).device)
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        for (name, _), g in zip(named, grads, strict=True):
            if g is not None:
                part = g.detach().to(torch.float64) * len(y)
                sums[name] = sums[name] + part if name in sums else part
        total_loss += float(loss.detach()) * len(y)
        count += len(y)
    if count == 0:
        raise UsageError("no examples to take a gradient over")
    return {k: v / count for k, v in sums.items()}, total_loss / count, count


def layer_of(name: str) -> str:
    """``hidden.weight`` → ``hidden``: parameters are grouped by the module that owns them."""
    return name.rpartition(".")[0] or name


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else float("nan")


def _pair_stats(f: torch.Tensor, r: torch.Tensor) -> dict[str, Any]:
    cos = _cos(f, r)
    return {
        "cos": cos,
        "abs_cos": abs(cos),
        "sign": 0 if cos == 0 or math.isnan(cos) else int(math.copysign(1, cos)),
        "forget_grad_norm": float(f.norm()),
        "retain_grad_norm": float(r.norm()),
        "n_params": int(f.numel()),
    }


def grad_alignment(
    model: nn.Module,
    forget: Data,
    retain: Data,
    loss_fn: LossFn,
    *,
    per_layer: bool = True,
    per_example: int = 0,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
) -> dict[str, Any]:
    """Cosine between the mean forget gradient ḡ_F and the mean retain gradient ḡ_R.

    Returns ``cos``, ``abs_cos``, ``sign``, both norms, ``pearson`` (cosine of the mean-centred flattened
    gradients), the mean losses and counts, ``per_layer`` (the same numbers for each module's
    parameters) and, with ``per_example=k``, ``per_example`` statistics of cos(∇ℓ_i, ḡ_R) over k forget
    examples drawn with ``seed``: mean, mean |cos|, ``frac_ascent_harms_retain`` (cos > 0: an ascent
    step on that example raises the retain loss, the damaging case) and ``frac_ascent_helps_retain``
    (cos < 0: it lowers the retain loss). The two need not sum to 1 (cos = 0 counts in neither).
    Eval mode; by default a float64 copy of the model is differentiated (the original is untouched).
    """
    with evaluating(model, dtype) as model:
        return _alignment(model, forget, retain, loss_fn, per_layer, per_example, seed)


def _alignment(
    model: nn.Module, forget: Data, retain: Data, loss_fn: LossFn, per_layer: bool, per_example: int, seed: int
) -> dict[str, Any]:
    g_f, loss_f, n_f = mean_gradient(model, forget, loss_fn)
    g_r, loss_r, n_r = mean_gradient(model, retain, loss_fn)
    names = [n for n, _ in trainable(model) if n in g_f and n in g_r]
    if not names:
        raise UsageError("the loss reaches no trainable parameter; nothing to align")
    flat_f = torch.cat([g_f[n].flatten() for n in names])
    flat_r = torch.cat([g_r[n].flatten() for n in names])
    out: dict[str, Any] = {
        **_pair_stats(flat_f, flat_r),
        "pearson": _cos(flat_f - flat_f.mean(), flat_r - flat_r.mean()),
        "forget_loss": loss_f,
        "retain_loss": loss_r,
        "n_forget": n_f,
        "n_retain": n_r,
    }
    if per_layer:
        layers: dict[str, list[str]] = {}
        for n in names:
            layers.setdefault(layer_of(n), []).append(n)
        out["per_layer"] = {
            layer: _pair_stats(torch.cat([g_f[n].flatten() for n in ps]), torch.cat([g_r[n].flatten() for n in ps]))
            for layer, ps in layers.items()
        }
    if per_example > 0:
        out["per_example"] = _per_example(model, forget, loss_fn, flat_r, names, per_example, seed)
    return out


def _per_example(
    model: nn.Module, forget: Data, loss_fn: LossFn, g_r: torch.Tensor, names: list[str], k: int, seed: int
) -> dict[str, Any]:
    """cos(∇ℓ_i, ḡ_R) for a seeded sample of k forget examples (one backward pass each)."""
    xs, ys = zip(*labelled_batches(forget), strict=True)
    x_all, y_all = torch.cat(xs), torch.cat(ys)
    pick = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed))[:k]
    params = dict(trainable(model))
    cosines = []
    for i in pick.tolist():
        loss = loss_fn(model(to_model_input(x_all[i : i + 1], model)), y_all[i : i + 1].to(g_r.device))
        grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        flat = torch.cat([
            (g if g is not None else torch.zeros_like(params[n])).detach().to(torch.float64).flatten()
            for n, g in zip(names, grads, strict=True)
        ])
        cosines.append(_cos(flat, g_r))
    values = torch.tensor([c for c in cosines if not math.isnan(c)], dtype=torch.float64)
    if len(values) == 0:
        nan = float("nan")
        return {"n": 0, "mean_cos": nan, "mean_abs_cos": nan, "frac_ascent_harms_retain": nan, "frac_ascent_helps_retain": nan}
    return {
        "n": len(values),
        "mean_cos": float(values.mean()),
        "mean_abs_cos": float(values.abs().mean()),
        # the derivation above: ascent on ℓ_i changes the retain loss by ≈ η⟨∇ℓ_i, ḡ_R⟩, so cos > 0 harms
        "frac_ascent_harms_retain": float((values > 0).double().mean()),
        "frac_ascent_helps_retain": float((values < 0).double().mean()),
    }
