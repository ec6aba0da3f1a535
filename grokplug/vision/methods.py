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

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .data import VisionData
from .iterative import (  # re-exported: callers import the building blocks from here too
    OPTML_SGD,
    PRESET_PROFILES,
    RELABEL_MODES,
    IterativeMethod,
    StepBudget,
    batches,
    cycled,
    make_optimizer,
    method_optimizer,
    model_device,
    other_labels,
    random_labels,
    sgd_step,
)

__all__ = [
    "FT", "GA", "OPTML_SGD", "PRESET_PROFILES", "RELABEL_MODES", "RL", "GradDiff", "IterativeMethod", "L1Sparse", "StepBudget",
    "batches", "cycled", "finetune_epoch", "make_optimizer", "method_optimizer", "model_device", "other_labels",
    "random_label_epoch", "random_labels", "sgd_step",
]

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


class FT(IterativeMethod):
    """Fine-tuning: plain CE descent on the retain set, relying on catastrophic forgetting.

    Follows OPTML's ``FT`` (Unlearn-Sparse / Unlearn-Saliency ``unlearn/FT.py``): SGD with momentum
    and weight decay, ``epochs`` passes over the retain loader; the forget set is never touched.

    Hyperparameters: ``lr`` (SGD learning rate), ``epochs`` (passes over retain), ``momentum``,
    ``weight_decay``, ``max_steps`` (update cap, ``None`` = none).
    """

    name = "ft"
    description = "Fine-tune on the retain set (OPTML FT): forgetting by catastrophic interference"
    defaults = {"lr": 0.1, "epochs": 10, **OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.01, "epochs": 10}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = method_optimizer(model, hp)
        for _ in range(int(hp["epochs"])):
            finetune_epoch(model, batches(data.retain, device), optimizer, budget)


class L1Sparse(IterativeMethod):
    """ℓ1-sparse unlearning: FT with a linearly decaying ``alpha``·‖θ‖₁ penalty (OPTML ``FT_l1`` / ``FT_prune``).

    In epoch ``e`` the penalty weight is ``alpha · (1 − e / (epochs − no_l1_epochs))`` for
    ``e < epochs − no_l1_epochs`` and 0 afterwards, exactly as ``FT_iter(with_l1=True)`` in
    Unlearn-Sparse; ‖θ‖₁ sums every parameter of the model.

    Hyperparameters: ``alpha`` (initial ℓ1 weight γ), ``no_l1_epochs`` (final epochs without the
    penalty), ``lr``, ``epochs``, ``momentum``, ``weight_decay``, ``max_steps``.
    """

    name = "l1-sparse"
    description = "FT with a linearly decaying l1 penalty on the weights (OPTML l1-sparse / FT_l1)"
    defaults = {"lr": 0.1, "epochs": 10, "alpha": 1e-3, "no_l1_epochs": 0, **OPTML_SGD, "max_steps": None}
    # Unlearn-Saliency Classification/README.md up to b874ee9 (2023-12-17), FT_prune: --unlearn_lr 0.01
    # --unlearn_epochs 10 (f31f82e replaced them with placeholders); every version leaves --alpha as
    # ${alpha}, so alpha 1e-4 is grokplug's choice, not a published value
    cifar_defaults = {"lr": 0.01, "epochs": 10, "alpha": 1e-4}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = method_optimizer(model, hp)
        epochs, l1_epochs = int(hp["epochs"]), int(hp["epochs"]) - int(hp["no_l1_epochs"])
        for epoch in range(epochs):
            weight = float(hp["alpha"]) * (1 - epoch / l1_epochs) if epoch < l1_epochs else 0.0
            finetune_epoch(model, batches(data.retain, device), optimizer, budget, l1_weight=weight)


class GA(IterativeMethod):
    """Gradient ascent: maximise CE on the forget set (OPTML ``GA``, ``loss = −criterion(output, y)``).

    Hyperparameters: ``lr``, ``epochs`` (passes over the forget loader), ``momentum``,
    ``weight_decay``, ``max_steps``. Unbounded by design: too many steps destroy the model.
    """

    name = "ga"
    description = "Gradient ascent on the forget set (OPTML GA)"
    defaults = {"lr": 1e-3, "epochs": 20, **OPTML_SGD, "max_steps": None}
    # Unlearn-Saliency Classification/README.md up to b874ee9 (2023-12-17), GA: --unlearn_lr 0.0001
    # --unlearn_epochs 5 (f31f82e replaced them with placeholders; the top-level README.md gives no GA command)
    cifar_defaults = {"lr": 1e-4, "epochs": 5}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = method_optimizer(model, hp)
        for _ in range(int(hp["epochs"])):
            for x, y in batches(data.forget, device):
                sgd_step(budget, optimizer, -F.cross_entropy(model(x), y))


class RL(IterativeMethod):
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
    defaults = {"lr": 0.1, "epochs": 5, "relabel": "any", **OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.013, "epochs": 10}  # Unlearn-Saliency top-level README.md example (RL, 0.013, 10 epochs)
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        optimizer = method_optimizer(model, hp)
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


class GradDiff(IterativeMethod):
    """Gradient difference (NegGrad+): ``retain_weight``·CE(retain) − (1 − ``retain_weight``)·CE(forget).

    Follows SCRUB's ``train_negrad`` (thirdparty/repdistiller ``loops.py``): each update pairs a
    retain batch with the next batch of an endlessly cycled forget loader; an epoch is one pass
    over the retain loader.

    Hyperparameters: ``retain_weight`` (NegGrad+'s α, in [0, 1]), ``lr``, ``epochs``, ``momentum``,
    ``weight_decay``, ``max_steps``.
    """

    name = "graddiff"
    description = "Ascent on forget plus descent on retain, weighted (NegGrad+ / GradDiff)"
    defaults = {"lr": 0.03, "epochs": 5, "retain_weight": 0.9, **OPTML_SGD, "max_steps": None}
    # SCRUB small_scale_unlearning.ipynb (98ffb11): ng_alpha 0.95, ng_epochs 10, ng_lr 0.01, SGD weight decay 0.
    cifar_defaults = {"lr": 0.01, "epochs": 10, "retain_weight": 0.95, "weight_decay": 0.0}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        weight = float(hp["retain_weight"])
        if not 0.0 <= weight <= 1.0:
            raise UsageError(f"retain_weight must lie in [0, 1], got {weight}")
        optimizer = method_optimizer(model, hp)
        forget = cycled(data.forget, device)
        for _ in range(int(hp["epochs"])):
            for (xr, yr), (xf, yf) in zip(batches(data.retain, device), forget, strict=False):
                loss = weight * F.cross_entropy(model(xr), yr) - (1 - weight) * F.cross_entropy(model(xf), yf)
                sgd_step(budget, optimizer, loss)
