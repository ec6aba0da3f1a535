"""Loss curvature: top Hessian eigenvalue (power iteration) and trace (Hutchinson), §6.3.

Both use exact Hessian-vector products by double backward (Pearlmutter): Hv = ∇_θ(∇_θL · v),
with L the size-weighted mean loss over every batch of ``data``. Seeded; eval mode; by default a
float64 copy of the model is differentiated, because near a grokked minimum (train loss ~1e-5)
float32 loses most digits of the gradient.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ._gradients import Data, LossFn, evaluating, labelled_batches, to_model_input, trainable

__all__ = ["hessian_top_eigenvalue", "hessian_trace", "hvp"]


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def hvp(model: nn.Module, loss_fn: LossFn, batches: list[tuple[torch.Tensor, torch.Tensor]], v: list[torch.Tensor]) -> list[torch.Tensor]:
    """H v for the mean loss over ``batches`` (each batch weighted by its size); ``v`` per trainable parameter."""
    params = [p for _, p in trainable(model)]
    n = sum(len(y) for _, y in batches)
    out = [torch.zeros_like(p) for p in params]
    for x, y in batches:
        loss = loss_fn(model(x), y) * (len(y) / n)
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        used = [i for i, g in enumerate(grads) if g is not None]
        gv = _dot([grads[i] for i in used], [v[i] for i in used]) if used else None
        if gv is None or not gv.requires_grad:  # the loss is at most linear in θ here: H v = 0
            continue
        hv = torch.autograd.grad(gv, [params[i] for i in used], allow_unused=True)
        for i, h in zip(used, hv, strict=True):
            if h is not None:
                out[i] += h.detach()
    return out


def _batches(model: nn.Module, data: Data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    device = next(model.parameters()).device
    batches = [(to_model_input(x, model), y.to(device)) for x, y in labelled_batches(data)]
    if not batches:
        raise UsageError("no data to measure curvature on")
    return batches


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    iters: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    details: bool = False,
) -> Any:
    """The Hessian eigenvalue of largest magnitude, by power iteration from a seeded Gaussian start.

    Stops when |λ_k − λ_{k−1}| < ``tol``·|λ_k| or after ``iters`` iterations. λ_k = v_kᵀHv_k is the
    signed Rayleigh quotient, so a dominant negative eigenvalue shows as negative. Returns the float,
    or with ``details=True`` a dict with ``value``, ``iterations``, ``converged``.
    """
    if iters < 1:
        raise UsageError(f"iters must be >= 1, got {iters}")
    with evaluating(model, dtype) as model:
        batches = _batches(model, data)
        gen = torch.Generator().manual_seed(seed)
        v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) for _, p in trainable(model)]
        norm = torch.sqrt(_dot(v, v))
        v = [x / norm for x in v]
        value, converged, k = float("nan"), False, 0
        for k in range(1, iters + 1):
            hv = hvp(model, loss_fn, batches, v)
            new = float(_dot(v, hv))
            size = float(torch.sqrt(_dot(hv, hv)))
            if size == 0.0 or not math.isfinite(size):
                value, converged = new, size == 0.0
                break
            v = [h / size for h in hv]
            if k > 1 and abs(new - value) < tol * abs(new):
                value, converged = new, True
                break
            value = new
    return {"value": value, "iterations": k, "converged": converged} if details else value


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    probes: int = 30,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    details: bool = False,
) -> Any:
    """Hutchinson's estimate tr(H) ≈ mean_i z_iᵀHz_i over ``probes`` seeded Rademacher vectors.

    Exact for a diagonal Hessian. Returns the float, or with ``details=True`` a dict with ``value``,
    ``stderr`` (standard error of the mean over probes) and ``probes``.
    """
    if probes < 1:
        raise UsageError(f"probes must be >= 1, got {probes}")
    with evaluating(model, dtype) as model:
        batches = _batches(model, data)
        gen = torch.Generator().manual_seed(seed)
        samples = []
        for _ in range(probes):
            z = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p) for _, p in trainable(model)]
            samples.append(float(_dot(z, hvp(model, loss_fn, batches, z))))
    values = torch.tensor(samples, dtype=torch.float64)
    stderr = float(values.std() / math.sqrt(probes)) if probes > 1 else float("nan")
    return {"value": float(values.mean()), "stderr": stderr, "probes": probes} if details else float(values.mean())
