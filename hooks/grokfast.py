"""Built-in grokking accelerator: Grokfast's EMA gradient filter (Lee et al. 2024), off by default.

ĝ = g + λ·μ with μ ← α·μ + (1−α)·g (μ starts at the first gradient). It is registered only when
enabled: ``GROKPLUG_GROKFAST=1`` (optionally ``GROKPLUG_GROKFAST_ALPHA`` / ``GROKPLUG_GROKFAST_LAMB``), the
``--grokfast`` flag of ``grokplug train``, or :func:`enable`. Our measurements on full-batch AdamW
found no speed-up (benchmarks/RESULTS.md, section 6); treat it as something to measure, not a promise.
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
    )


FILTER = _from_env()  # the settings; whether it acts is whether this module is registered


def enable(alpha: float = 0.98, lamb: float = 2.0) -> None:
    """Turn the filter on in this process: register this plugin with the plugin manager."""
    from grokplug.plugins import get_plugin_manager

    FILTER.alpha, FILTER.lamb = alpha, lamb
    FILTER.reset()
    get_plugin_manager().set_builtin_enabled(__name__, True)


def disable() -> None:
    """Turn it off again: unregister this plugin."""
    from grokplug.plugins import get_plugin_manager

    FILTER.reset()
    get_plugin_manager().set_builtin_enabled(__name__, False)


@hookimpl
def grokplug_transform_gradients(model: torch.nn.Module, step: int) -> None:
    FILTER.apply(model)  # registered only while enabled (grokplug.plugins.GRADIENT_PLUGINS)
