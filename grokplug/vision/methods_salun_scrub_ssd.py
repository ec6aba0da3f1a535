"""Built-in vision unlearning methods, part 2: SalUn, SCRUB and SSD.

Same contract as :mod:`grokplug.vision.methods`: device-agnostic, own optimizer (seen by the step
monitor's global hook), CE-based, model changed in place and returned.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .._unlearning_method import UnlearningMethod
from ..errors import UsageError
from .data import VisionData
from .methods import (
    OPTML_SGD,
    PRESET_PROFILES,
    IterativeMethod,
    StepBudget,
    batches,
    make_optimizer,
    model_device,
    random_label_epoch,
    sgd_step,
)

__all__ = ["SSD", "SCRUB", "SalUn", "saliency_mask"]


def saliency_mask(model: nn.Module, data: VisionData, mask_ratio: float) -> dict[str, torch.Tensor]:
    """SalUn's hard mask: the top ``mask_ratio`` of all weights by |Σ_batches ∇(−CE)| on the forget set.

    As ``save_gradient_ratio`` in SalUn's ``generate_mask.py``: eval mode, per-batch mean CE, gradients
    summed over the forget loader, one global ranking across every parameter tensor (ties broken by
    position), ``int(N · mask_ratio)`` ones. Unlike the older script no optimizer step is taken while
    the gradients accumulate, so all of them are taken at θ0. Returns ``{param_name: 0/1 tensor}``.
    """
    if not 0.0 <= mask_ratio <= 1.0:
        raise UsageError(f"mask_ratio must lie in [0, 1], got {mask_ratio}")
    was_training = model.training
    model.eval()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    gradients = {n: torch.zeros_like(p) for n, p in named}
    try:
        model.zero_grad(set_to_none=True)
        for x, y in batches(data.forget, model_device(model)):
            (-F.cross_entropy(model(x), y)).backward()
            with torch.no_grad():
                for n, p in named:
                    if p.grad is not None:
                        gradients[n] += p.grad
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    saliency = torch.cat([g.abs().flatten() for g in gradients.values()])
    keep = int(len(saliency) * mask_ratio)
    flat = torch.zeros_like(saliency)
    flat[torch.argsort(-saliency, stable=True)[:keep]] = 1.0
    return {n: chunk.view_as(gradients[n]) for n, chunk in zip(gradients, flat.split([g.numel() for g in gradients.values()]), strict=True)}


class SalUn(IterativeMethod):
    """Saliency unlearning: SalUn's RL restricted to the weights most salient for forgetting.

    1. :func:`saliency_mask` keeps the top ``mask_ratio`` of weights by |∇(−CE)| on the forget set
       (SalUn's ``generate_mask.py``; the paper's default is ``with_0.5.pt``).
    2. RL epochs as :class:`~grokplug.vision.methods.RL` (forget pass with labels
       ``randint(0, num_classes)`` by default, ``relabel="other"`` for wrong labels only; then a retain
       pass), with ``param.grad *= mask`` before every update (``_apply_mask_to_grads``).
    3. After every update masked-out weights are restored to θ0 and their momentum is zeroed
       (SalUn PR #33, ``_restore_masked_params``), so weight decay and momentum cannot move them.

    Steps 2 and 3 run as step pre/post hooks of the method's own optimizer; its instance post-hook
    fires before PyTorch's global post-hooks, so the step monitor always sees restored weights.

    Differences from the reference: the mask is computed in-process at θ0 (the reference's
    ``generate_mask.py`` is a separate script writing ``with_{ratio}.pt``), and only the ``cifar10``
    branch of RL is offered (see :class:`~grokplug.vision.methods.RL`).

    Hyperparameters: ``mask_ratio`` (fraction of weights updated), ``lr``, ``epochs``, ``relabel``,
    ``momentum``, ``weight_decay``, ``max_steps``.
    """

    name = "salun"
    description = "Saliency-masked random labelling (SalUn: RL on the top-|grad| weights, the rest frozen at θ0)"
    defaults = {"lr": 0.1, "epochs": 5, "mask_ratio": 0.5, "relabel": "any", **OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.013, "epochs": 10, "mask_ratio": 0.5}  # SalUn README: RL, 0.013, 10 epochs, with_0.5.pt
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        mask = saliency_mask(model, data, float(hp["mask_ratio"]))
        model.train()
        params = dict(model.named_parameters())
        masked = [(params[n], m.to(device=params[n].device, dtype=params[n].dtype)) for n, m in mask.items()]
        theta0 = [p.detach().clone() for p, _ in masked]
        optimizer = make_optimizer(model, str(hp["optimizer"]), hp["lr"], hp["momentum"], hp["weight_decay"])

        def mask_gradients(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            for p, m in masked:
                if p.grad is not None:
                    p.grad.mul_(m)

        @torch.no_grad()
        def restore_masked_out(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            for (p, m), p0 in zip(masked, theta0, strict=True):
                p.mul_(m).add_(p0 * (1 - m))
                buffer = opt.state.get(p, {}).get("momentum_buffer")
                if buffer is not None:
                    buffer.mul_(m)

        handles = [optimizer.register_step_pre_hook(mask_gradients), optimizer.register_step_post_hook(restore_masked_out)]
        try:
            for _ in range(int(hp["epochs"])):
                random_label_epoch(model, data, optimizer, budget, device, str(hp["relabel"]))
        finally:
            for handle in handles:
                handle.remove()


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """repdistiller's ``DistillKL``: KL(teacher ‖ student) at temperature T, × T², averaged over the batch."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="sum") * temperature**2 / student_logits.shape[0]


class SCRUB(IterativeMethod):
    """SCRUB: the model (student) moves away from a frozen copy of itself (teacher) on forget, stays close on retain.

    Follows SCRUB's notebooks and ``train_distill`` (repdistiller ``loops.py``, ``distill="kd"``): for
    epoch 1..``epochs`` the learning rate is ``lr · lr_decay_rate^(#decay epochs < epoch)``; while
    epoch ≤ ``msteps`` a *max* pass over forget minimises −KL(student, teacher); every epoch then runs
    a *min* pass over retain on ``gamma``·CE + ``alpha``·KL. KL is :func:`distill_kl` at ``kd_T``.

    Hyperparameters: ``lr`` (sgda_learning_rate), ``epochs`` (sgda_epochs), ``msteps``, ``kd_T``,
    ``gamma`` (CE weight), ``alpha`` (KL weight), ``optimizer`` (``"sgd"``/``"adam"``),
    ``momentum``, ``weight_decay``, ``lr_decay_epochs``, ``lr_decay_rate``, ``max_steps``.
    """

    name = "scrub"
    description = "SCRUB: max-KL from a frozen teacher on forget, min CE+KL on retain (student = the model)"
    defaults = {
        "lr": 0.05, "epochs": 5, "msteps": 3, "kd_T": 4.0, "gamma": 0.99, "alpha": 0.001, "optimizer": "sgd",
        **OPTML_SGD, "lr_decay_epochs": [3, 5, 9], "lr_decay_rate": 0.1, "max_steps": None,
    }
    # SCRUB large-scale notebook (CIFAR-10 ResNet): sgd, 5e-4, 3 epochs, msteps 2, T 4, γ .99, α .001, decay [3,5,9]
    cifar_defaults = {"lr": 5e-4, "epochs": 3, "msteps": 2}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        teacher = copy.deepcopy(model).eval()
        teacher.requires_grad_(False)
        optimizer = make_optimizer(model, str(hp["optimizer"]), hp["lr"], hp["momentum"], hp["weight_decay"])
        temperature, gamma, alpha = float(hp["kd_T"]), float(hp["gamma"]), float(hp["alpha"])
        for epoch in range(1, int(hp["epochs"]) + 1):
            decays = sum(epoch > int(e) for e in hp["lr_decay_epochs"])
            for group in optimizer.param_groups:
                group["lr"] = float(hp["lr"]) * float(hp["lr_decay_rate"]) ** decays
            if epoch <= int(hp["msteps"]):
                for x, _ in batches(data.forget, device):
                    with torch.no_grad():
                        target = teacher(x)
                    sgd_step(budget, optimizer, -distill_kl(model(x), target, temperature))
            for x, y in batches(data.retain, device):
                with torch.no_grad():
                    target = teacher(x)
                logits = model(x)
                loss = gamma * F.cross_entropy(logits, y) + alpha * distill_kl(logits, target, temperature)
                sgd_step(budget, optimizer, loss)


def _full_train(data: VisionData) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """SSD's ``full_train_dl``: ``data.full_train`` or, if absent, retain then forget."""
    if data.full_train is not None:
        return iter(data.full_train)
    return itertools.chain(data.retain, data.forget)


def ssd_importance(model: nn.Module, loader: Any) -> dict[str, torch.Tensor]:
    """SSD's ``calc_importance``: per-parameter mean over batches of the squared gradient of the batch CE."""
    device = model_device(model)
    importance = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    n_batches = 0
    for x, y in loader:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x.to(device)), y.to(device)).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                importance[n] += p.grad.detach().pow(2)
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return {n: imp / max(n_batches, 1) for n, imp in importance.items()}


class SSD(UnlearningMethod):
    """Selective Synaptic Dampening (Foster et al. 2023; if-loops/selective-synaptic-dampening ``ssd.py``).

    One shot, no optimizer: importances are the mean squared CE gradients over the forget loader
    (f_imp) and over the full training loader (o_imp), taken in eval mode. Wherever
    f_imp > ``selection_weighting``·o_imp, the weight is multiplied by
    min((``dampening_constant``·o_imp / f_imp)^``exponent``, ``lower_bound``); every other weight
    is left bit-for-bit unchanged.

    ``strength_param`` is ``selection_weighting`` (α): it is the knob the SSD authors tune per model
    (λ stays 1 in all their experiments), and it sets both *which* weights are touched and, since a
    selected weight has o_imp/f_imp < 1/α, how hard (factor < λ/α). Lower α = stronger forgetting.

    Hyperparameters: ``dampening_constant`` (λ), ``selection_weighting`` (α), ``exponent``,
    ``lower_bound`` (cap on the factor; 1 = never grow a weight).
    """

    name = "ssd"
    domain: ClassVar[str] = "vision"
    description = "Selective Synaptic Dampening: shrink weights far more important to forget than to train (one shot)"
    iterative = False
    strength_param = "selection_weighting"
    strength_sweep = (50.0, 20.0, 10.0, 5.0, 2.0, 1.0)  # weakest first: a lower α dampens more weights
    defaults = {"dampening_constant": 1.0, "selection_weighting": 5.0, "exponent": 1.0, "lower_bound": 1.0}
    cifar_defaults = {"selection_weighting": 10.0}  # forget_random_main.py: λ = 1, α = 10 (ResNet-18)

    def run(self, model: nn.Module, data: VisionData, **hp: Any) -> nn.Module:
        was_training = model.training
        model.eval()  # ssd_tuning calls model.eval() before computing importances
        try:
            forget_imp = ssd_importance(model, data.forget)
            train_imp = ssd_importance(model, _full_train(data))
        finally:
            model.train(was_training)
        dampen_weights(model, train_imp, forget_imp, **hp)
        return model


@torch.no_grad()
def dampen_weights(
    model: nn.Module, train_imp: dict[str, torch.Tensor], forget_imp: dict[str, torch.Tensor], *,
    dampening_constant: float, selection_weighting: float, exponent: float, lower_bound: float,
) -> int:
    """SSD's ``modify_weight``, in place; returns how many weights were dampened."""
    changed = 0
    for n, p in model.named_parameters():
        o_imp, f_imp = train_imp[n], forget_imp[n]
        selected = f_imp > o_imp * selection_weighting
        factor = (o_imp * dampening_constant / f_imp).pow(exponent).clamp(max=lower_bound)
        p[selected] = p[selected] * factor[selected]
        changed += int(selected.sum())
    return changed
