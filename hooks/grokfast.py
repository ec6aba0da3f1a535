"""Built-in grokking accelerator: Grokfast's EMA gradient filter (Lee et al. 2024), off by default.

ĝ = g + λ·μ with μ ← α·μ + (1−α)·g (μ starts at the first gradient). Enable it with
``GROKPLUG_GROKFAST=1`` (optionally ``GROKPLUG_GROKFAST_ALPHA`` / ``GROKPLUG_GROKFAST_LAMB``), the
``--grokfast`` flag of ``grokplug train``, or :func:`enable`. Our measurements on full-batch AdamW
found no speed-up (DESIGN.md); treat it as something to measure, not a promise.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field

import torch

from . import hookimpl


@dataclass
class GrokfastEMA:
    """The filter's settings and its per-model state (one EMA buffer per parameter)."""

    alpha: float = 0.98
    lamb: float = 2.0
    enabled: bool = False
    _ema: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, torch.Tensor]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        state = self._ema.setdefault(model, {})
        for name, param in model.named_parameters():
            if param.grad is None:  # frozen or unused parameters (PEFT, partial fine-tuning)
                continue
            mu = state.get(name)
            if mu is None:
                state[name] = mu = param.grad.detach().clone()
            else:
                mu.mul_(self.alpha).add_(param.grad, alpha=1.0 - self.alpha)
            param.grad.add_(mu, alpha=self.lamb)

    def reset(self) -> None:
        self._ema = weakref.WeakKeyDictionary()


def _from_env() -> GrokfastEMA:
    return GrokfastEMA(
        alpha=float(os.environ.get("GROKPLUG_GROKFAST_ALPHA", 0.98)),
        lamb=float(os.environ.get("GROKPLUG_GROKFAST_LAMB", 2.0)),
        enabled=os.environ.get("GROKPLUG_GROKFAST", "").strip().lower() in {"1", "true", "yes", "on"},
    )


FILTER = _from_env()


def enable(alpha: float = 0.98, lamb: float = 2.0) -> None:
    """Turn the filter on for this process."""
    FILTER.alpha, FILTER.lamb, FILTER.enabled = alpha, lamb, True
    FILTER.reset()


def disable() -> None:
    FILTER.enabled = False
    FILTER.reset()


@hookimpl
def grokplug_transform_gradients(model: torch.nn.Module, step: int) -> None:
    if FILTER.enabled:
        FILTER.apply(model)
