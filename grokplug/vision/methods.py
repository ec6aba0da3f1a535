"""Built-in vision unlearning methods, part 1: FT, GA, RL, GradDiff and ℓ1-sparse.

Each method is an :class:`~grokplug.UnlearningMethod` that re-implements one toolkit's loop on
``(x, y)`` loaders (OPTML's Unlearn-Sparse / Unlearn-Saliency, SCRUB's NegGrad+), device-agnostic:
it runs on ``next(model.parameters()).device`` and never calls ``.cuda()``. ``run`` changes the model
in place and returns it. Every method builds its own optimizer, so grokplug's step monitor (PyTorch's
global optimizer post-step hook) counts its updates. Unlearning losses are cross-entropy whatever loss
trained the model (the digits preset trains with MSE).

Budget hyperparameters shared by the iterative methods:

* ``epochs``: passes as the original defines them (per method docstring);
* ``max_steps``: stop after this many optimizer updates (``None``: no cap).

``defaults`` are for the offline presets (sklearn digits: ~250 train images, batches of 64, a
large-init MLP), chosen only so that each method lowers forget accuracy from both θ_pre and θ_grok
within seconds, never to favour one start: the same GA and SSD defaults that forget gently from
θ_grok drive θ_pre (large weights, so large CE gradients) to chance level. ``cifar_defaults``
follow the toolkits' published CIFAR-10 / ResNet-18 settings (cited per method).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .._unlearning_method import UnlearningMethod
from ..errors import UsageError
from .data import VisionData

__all__ = ["FT", "GA", "RL", "GradDiff", "L1Sparse", "StepBudget", "make_optimizer", "model_device", "random_labels"]

#: SGD with OPTML's momentum / weight decay, the optimizer every OPTML method builds for itself.
_OPTML_SGD: dict[str, Any] = {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4}

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
    "digits-noisy": {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0},
    "digits-noisy-cnn": {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0},
    "digits": {},
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


class _IterativeMethod(UnlearningMethod):
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


def _sgd(model: nn.Module, hp: dict[str, Any]) -> torch.optim.Optimizer:
    """The method's own optimizer: OPTML's SGD by default, ``optimizer="adam"`` where a profile says so."""
    return make_optimizer(model, str(hp.get("optimizer", "sgd")), hp["lr"], hp["momentum"], hp["weight_decay"])


def finetune_epoch(
    model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], optimizer: torch.optim.Optimizer,
    budget: StepBudget, l1_weight: float = 0.0,
) -> None:
    """One pass of CE descent (plus ``l1_weight``·‖θ‖₁ when positive) over ``loader``."""
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        if l1_weight > 0:
            loss = loss + l1_weight * sum(p.abs().sum() for p in model.parameters())
        sgd_step(budget, optimizer, loss)


class FT(_IterativeMethod):
    """Fine-tuning: plain CE descent on the retain set, relying on catastrophic forgetting.

    Follows OPTML's ``FT`` (Unlearn-Sparse / Unlearn-Saliency ``unlearn/FT.py``): SGD with momentum
    and weight decay, ``epochs`` passes over the retain loader; the forget set is never touched.

    Hyperparameters: ``lr`` (SGD learning rate), ``epochs`` (passes over retain), ``momentum``,
    ``weight_decay``, ``max_steps`` (update cap, ``None`` = none).
    """

    name = "ft"
    description = "Fine-tune on the retain set (OPTML FT): forgetting by catastrophic interference"
    defaults = {"lr": 0.1, "epochs": 10, **_OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.01, "epochs": 10}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = _sgd(model, hp)
        for _ in range(int(hp["epochs"])):
            finetune_epoch(model, batches(data.retain, device), optimizer, budget)


class L1Sparse(_IterativeMethod):
    """ℓ1-sparse unlearning: FT with a linearly decaying ``alpha``·‖θ‖₁ penalty (OPTML ``FT_l1`` / ``FT_prune``).

    In epoch ``e`` the penalty weight is ``alpha · (1 − e / (epochs − no_l1_epochs))`` for
    ``e < epochs − no_l1_epochs`` and 0 afterwards, exactly as ``FT_iter(with_l1=True)`` in
    Unlearn-Sparse; ‖θ‖₁ sums every parameter of the model.

    Hyperparameters: ``alpha`` (initial ℓ1 weight γ), ``no_l1_epochs`` (final epochs without the
    penalty), ``lr``, ``epochs``, ``momentum``, ``weight_decay``, ``max_steps``.
    """

    name = "l1-sparse"
    description = "FT with a linearly decaying l1 penalty on the weights (OPTML l1-sparse / FT_l1)"
    defaults = {"lr": 0.1, "epochs": 10, "alpha": 1e-3, "no_l1_epochs": 0, **_OPTML_SGD, "max_steps": None}
    # Unlearn-Saliency Classification/README.md up to b874ee9 (2023-12-17), FT_prune: --unlearn_lr 0.01
    # --unlearn_epochs 10 (f31f82e replaced them with placeholders); every version leaves --alpha as
    # ${alpha}, so alpha 1e-4 is grokplug's choice, not a published value
    cifar_defaults = {"lr": 0.01, "epochs": 10, "alpha": 1e-4}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = _sgd(model, hp)
        epochs, l1_epochs = int(hp["epochs"]), int(hp["epochs"]) - int(hp["no_l1_epochs"])
        for epoch in range(epochs):
            weight = float(hp["alpha"]) * (1 - epoch / l1_epochs) if epoch < l1_epochs else 0.0
            finetune_epoch(model, batches(data.retain, device), optimizer, budget, l1_weight=weight)


class GA(_IterativeMethod):
    """Gradient ascent: maximise CE on the forget set (OPTML ``GA``, ``loss = −criterion(output, y)``).

    Hyperparameters: ``lr``, ``epochs`` (passes over the forget loader), ``momentum``,
    ``weight_decay``, ``max_steps``. Unbounded by design: too many steps destroy the model.
    """

    name = "ga"
    description = "Gradient ascent on the forget set (OPTML GA)"
    defaults = {"lr": 1e-3, "epochs": 20, **_OPTML_SGD, "max_steps": None}
    # Unlearn-Saliency Classification/README.md up to b874ee9 (2023-12-17), GA: --unlearn_lr 0.0001
    # --unlearn_epochs 5 (f31f82e replaced them with placeholders; the top-level README.md gives no GA command)
    cifar_defaults = {"lr": 1e-4, "epochs": 5}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = _sgd(model, hp)
        for _ in range(int(hp["epochs"])):
            for x, y in batches(data.forget, device):
                sgd_step(budget, optimizer, -F.cross_entropy(model(x), y))


class RL(_IterativeMethod):
    """Random labelling: CE descent on forget samples relabelled at random, then on the retain set.

    Follows the ``cifar10``/``svhn`` branch of SalUn's ``unlearn/RL.py`` (Unlearn-Saliency): every epoch
    is one pass over the forget loader with fresh labels ``torch.randint(0, num_classes)`` (so 1/C of
    them are the true label), then one pass over the retain loader with true labels.
    ``relabel="other"`` (opt-in, grokplug's earlier default) draws only wrong labels instead.
    Difference from the reference: its ``cifar100``/``TinyImagenet`` branch (one shuffled pass over
    relabelled forget ∪ retain) is not offered.

    Hyperparameters: ``lr``, ``epochs``, ``relabel`` (``"any"``/``"other"``), ``momentum``,
    ``weight_decay``, ``max_steps``.
    """

    name = "rl"
    description = "Random labels on the forget set, then fine-tuning on retain (SalUn's RL, cifar10 branch)"
    defaults = {"lr": 0.1, "epochs": 5, "relabel": "any", **_OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.013, "epochs": 10}  # Unlearn-Saliency top-level README.md example (RL, 0.013, 10 epochs)
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = _sgd(model, hp)
        for _ in range(int(hp["epochs"])):
            random_label_epoch(model, data, optimizer, budget, device, str(hp["relabel"]))


def random_label_epoch(
    model: nn.Module, data: VisionData, optimizer: torch.optim.Optimizer, budget: StepBudget, device: torch.device,
    relabel: str = "any",
) -> None:
    """One RL epoch: the forget pass with :func:`random_labels`, then the retain pass with true labels."""
    if relabel not in RELABEL_MODES:
        raise UsageError(f"relabel must be one of {', '.join(RELABEL_MODES)}, got {relabel!r}")
    for x, y in batches(data.forget, device):
        sgd_step(budget, optimizer, F.cross_entropy(model(x), random_labels(y, data.num_classes, relabel)))
    finetune_epoch(model, batches(data.retain, device), optimizer, budget)


class GradDiff(_IterativeMethod):
    """Gradient difference (NegGrad+): ``retain_weight``·CE(retain) − (1 − ``retain_weight``)·CE(forget).

    Follows SCRUB's ``train_negrad`` (thirdparty/repdistiller ``loops.py``): each update pairs a
    retain batch with the next batch of an endlessly cycled forget loader; an epoch is one pass
    over the retain loader.

    Hyperparameters: ``retain_weight`` (NegGrad+'s α, in [0, 1]), ``lr``, ``epochs``, ``momentum``,
    ``weight_decay``, ``max_steps``.
    """

    name = "graddiff"
    description = "Ascent on forget plus descent on retain, weighted (NegGrad+ / GradDiff)"
    defaults = {"lr": 0.03, "epochs": 5, "retain_weight": 0.9, **_OPTML_SGD, "max_steps": None}
    # SCRUB small_scale_unlearning.ipynb (98ffb11): ng_alpha 0.95, ng_epochs 10, ng_lr 0.01, SGD weight decay 0.
    cifar_defaults = {"lr": 0.01, "epochs": 10, "retain_weight": 0.95, "weight_decay": 0.0}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        weight = float(hp["retain_weight"])
        if not 0.0 <= weight <= 1.0:
            raise UsageError(f"retain_weight must lie in [0, 1], got {weight}")
        optimizer = _sgd(model, hp)
        forget = cycled(data.forget, device)
        for _ in range(int(hp["epochs"])):
            for (xr, yr), (xf, yf) in zip(batches(data.retain, device), forget, strict=False):
                loss = weight * F.cross_entropy(model(xr), yr) - (1 - weight) * F.cross_entropy(model(xf), yf)
                sgd_step(budget, optimizer, loss)
