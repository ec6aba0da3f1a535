"""What every iterative vision method is built from: its optimizer, the step budget, batch iterators, random
labels and the shared ``run`` (:class:`IterativeMethod`). The methods are in ``methods.py``,
``methods_paper.py`` and ``methods_salun_scrub_ssd.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._unlearning_method import UnlearningMethod
from ..errors import UsageError
from .data import VisionData

__all__ = [
    "OPTML_SGD", "PRESET_PROFILES", "RELABEL_MODES", "IterativeMethod", "StepBudget", "batches", "cycled", "make_optimizer",
    "method_optimizer", "model_device", "other_labels", "random_labels", "sgd_step",
]

#: SGD with OPTML's momentum / weight decay, the optimizer every OPTML method builds for itself.
OPTML_SGD: dict[str, Any] = {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4}

#: Per-preset profiles of the iterative methods (profile ``"auto"`` picks the run's preset). One rule
#: for every method, not tuned on either start: ``modular`` and ``modular-transformer`` train with
#: full-batch AdamW to CE losses of ~1e-1 (θ_pre) and ~1e-4 (θ_grok), where an SGD step (∝ gradient
#: ∝ loss) barely moves the weights, so their profile is Adam (scale-free steps) at the preset's own
#: training learning rate, without weight decay; ``digits`` keeps the offline defaults, which were
#: chosen on it. The paper-regime ``digits-noisy`` presets also train with full-batch AdamW (CE); at the
#: offline SGD defaults GA/FT/SCRUB/∇τ left both starts' forget accuracy at 1.000 (docs/results.md §8), so
#: they get the same rule. tests/test_vision_profiles.py checks the learning rates against the presets' configs.
PRESET_PROFILES: dict[str, dict[str, Any]] = {
    "modular": {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0},
    "modular-transformer": {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0},
    "digits": {},
    "digits-noisy": {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0},
    "digits-noisy-cnn": {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0},
}


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (methods move batches there; they never call ``.cuda()``)."""
    return next(model.parameters()).device


def make_optimizer(
    model: nn.Module, kind: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """``"sgd"`` or ``"adam"`` over the trainable parameters (frozen ones stay frozen)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise UsageError(f"unknown optimizer {kind!r}; use 'sgd' or 'adam'")


class _BudgetSpent(Exception):
    """Raised by :meth:`StepBudget.step` once ``max_steps`` updates are done; ends the method quietly."""


class StepBudget:
    """Counts a method's own optimizer updates and ends it after ``max_steps``.

    Use as a context manager around the training loops and call :meth:`step` instead of
    ``optimizer.step()``; the ``with`` block swallows only the budget's own stop signal, so the
    step monitor's early stop (raised from the global hook) still reaches the caller.
    """

    def __init__(self, max_steps: int | None) -> None:
        if max_steps is not None and int(max_steps) < 0:
            raise UsageError(f"max_steps must be >= 0 or None, got {max_steps}")
        self.max_steps = None if max_steps is None else int(max_steps)
        self.steps = 0

    def check(self) -> None:
        """Stop before the next update if the budget is already spent (``max_steps=0``)."""
        if self.max_steps is not None and self.steps >= self.max_steps:
            raise _BudgetSpent

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.check()
        optimizer.step()
        self.steps += 1
        self.check()

    def __enter__(self) -> StepBudget:
        return self  # max_steps=0 stops at the first step() call, inside the block

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is _BudgetSpent


def batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches moved to ``device``."""
    for x, y in loader:
        yield x.to(device), y.to(device)


def cycled(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(x, y)`` batches (a fresh shuffle each pass, unlike ``itertools.cycle``)."""
    if len(loader) == 0:
        raise UsageError("cannot cycle an empty loader")
    for _ in itertools.count():
        yield from batches(loader, device)


def other_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A uniformly random label different from each true label (global RNG, so ``torch.manual_seed`` fixes it)."""
    shift = torch.randint(1, num_classes, y.shape, device=y.device)
    return (y + shift) % num_classes


#: RL/SalUn relabelling: ``"any"`` = Unlearn-Saliency's ``torch.randint(0, num_classes)`` (the true label
#: 1/C of the time; the default), ``"other"`` = a uniformly random *wrong* label (opt-in)
RELABEL_MODES = ("any", "other")


def random_labels(y: torch.Tensor, num_classes: int, relabel: str = "any") -> torch.Tensor:
    """Random labels for RL's forget pass, drawn from the global torch RNG (``torch.manual_seed`` fixes them)."""
    if relabel == "any":
        return torch.randint(0, num_classes, y.shape, device=y.device)
    if relabel == "other":
        return other_labels(y, num_classes)
    raise UsageError(f"relabel must be one of {', '.join(RELABEL_MODES)}, got {relabel!r}")


def sgd_step(budget: StepBudget, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad → backward → step, counted by ``budget``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    budget.step(optimizer)


class IterativeMethod(UnlearningMethod):
    """Shared ``run``: put the model in train mode, run :meth:`_unlearn` under a budget, restore the mode."""

    domain: ClassVar[str] = "vision"

    def run(self, model: nn.Module, data: VisionData, **hparams: Any) -> nn.Module:
        was_training = model.training
        model.train()
        try:
            with StepBudget(hparams.get("max_steps")) as budget:
                self._unlearn(model, data, budget, model_device(model), **hparams)
        finally:
            model.zero_grad(set_to_none=True)
            model.train(was_training)
        return model

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        raise NotImplementedError  # pragma: no cover


def method_optimizer(model: nn.Module, hp: dict[str, Any]) -> torch.optim.Optimizer:
    """The method's own optimizer: OPTML's SGD by default, ``optimizer="adam"`` where a profile says so."""
    return make_optimizer(model, str(hp.get("optimizer", "sgd")), hp["lr"], hp["momentum"], hp["weight_decay"])
