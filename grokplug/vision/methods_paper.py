"""Built-in vision methods, part 3: the two the grokking paper runs that no toolkit ships as a library.

* :class:`FisherForgetting` (Golatkar et al. 2020, "Eternal Sunshine of the Spotless Net"), as the
  SSD repository runs it as a baseline (``FisherForgetting`` in ``src/forget_random_strategies.py``);
* :class:`NablaTau` (∇τ, Trippa et al. 2024, "∇τ: Gradient-based and Task-Agnostic machine Unlearning").

Same contract as :mod:`grokplug.vision.methods`: device-agnostic, own optimizer, model changed in place.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .._unlearning_method import UnlearningMethod
from ..errors import UsageError
from .data import VisionData
from .methods import (
    OPTML_SGD,
    PRESET_PROFILES,
    IterativeMethod,
    StepBudget,
    batches,
    cycled,
    make_optimizer,
    model_device,
    sgd_step,
)

__all__ = ["FisherForgetting", "NablaTau", "fisher_diagonal", "fisher_noise_variance", "held_out_loss"]


def fisher_diagonal(model: nn.Module, loader: Any, chunk: int = 256) -> dict[str, torch.Tensor]:
    """Diagonal of the (true, model-sampled) Fisher over ``loader``: mean_x Σ_y p(y|x)·(∇_θ CE(x, y))².

    As the reference's ``hessian()``: eval mode, one example at a time, every class y weighted by the
    model's own probability p(y|x) (not only the true label). Per-example gradients come from
    ``torch.func.vmap`` over chunks of ``chunk`` examples, which gives the same sums as its batch-size-1 loop.
    """
    was_training = model.training
    model.eval()
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    device = model_device(model)

    def example_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_example_grad = vmap(grad(example_loss), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    try:
        for x_all, _ in loader:
            for x in x_all.split(chunk):
                x = x.to(device)
                with torch.no_grad():
                    prob = F.softmax(model(x), dim=-1)
                for y in range(prob.shape[1]):
                    grads = per_example_grad(params, x, torch.full((len(x),), y, device=device, dtype=torch.long))
                    weight = prob[:, y]
                    for n, g in grads.items():
                        total[n] += torch.einsum("b,b...->...", weight, g.pow(2))
                count += len(x)
    finally:
        model.train(was_training)
    if count == 0:
        raise UsageError("Fisher forgetting needs a non-empty retain set")
    return {n: t / count for n, t in total.items()}


def fisher_noise_variance(
    model: nn.Module, fisher: dict[str, torch.Tensor], num_classes: int, alpha: float
) -> dict[str, torch.Tensor]:
    """The reference's ``get_mean_var``: the per-weight noise variance added around θ0.

    var = alpha · min(1/(F + 1e-8), 1e3), capped at alpha · 1e2 for tensors whose first dimension is
    ``num_classes`` (the classifier); for tensors of 2+ dimensions averaged over dimension 1 (one
    value per output unit); × 10 for 1-D tensors (biases, BatchNorm).
    """
    out: dict[str, torch.Tensor] = {}
    for n, p in model.named_parameters():
        if n not in fisher:
            continue
        var = (1.0 / (fisher[n] + 1e-8)).clamp(max=1e3)
        if p.size(0) == num_classes:
            var = var.clamp(max=1e2)
        var = alpha * var
        if p.ndim > 1:
            var = var.mean(dim=1, keepdim=True).expand_as(p).clone()
        if p.ndim == 1:
            var = var * 10
        out[n] = var
    return out


class FisherForgetting(UnlearningMethod):
    """Fisher forgetting (Golatkar, Achille & Soatto 2020, "Eternal Sunshine of the Spotless Net").

    One shot, no optimizer: the diagonal Fisher of the retain set (:func:`fisher_diagonal`) sets a
    per-weight variance (:func:`fisher_noise_variance`), and every weight becomes
    θ0 + √var · N(0, 1). Weights the retain set barely constrains (small Fisher) get the most noise,
    which destroys what only the forget set put there.

    Source: the SSD repository's ``FisherForgetting`` baseline (if-loops/selective-synaptic-dampening
    ``cdfdc0e``, ``src/forget_random_strategies.py``), which runs Golatkar's method with ``alpha = 1e-6``;
    the Fisher (eval mode, one example at a time, every class weighted by p(y|x), over the retain set),
    the clamps (1e3; 1e2 for the classifier), the per-output-unit mean and the ×10 for 1-D tensors are
    its, checked line by line. Noise is drawn from the global torch RNG, so ``torch.manual_seed`` fixes it.

    Known differences: (1) only parameters with ``requires_grad`` get noise (SSD loops over all of them,
    so a frozen tensor there gets the maximal α·1e3 noise); (2) SCRUB's copy (meghdadk/SCRUB ``98ffb11``,
    ``small_scale_unlearning.ipynb``) multiplies the *whole* classifier (weight too, not only 1-D
    tensors) by 10, and for class-wise forgetting sets the forgotten class's classifier rows to mean 0,
    variance 1e-4: neither is done here; (3) SCRUB uses α = 1e-6 small-scale and 1e-7 large-scale.
    Both repositories feed the retain set through its training transform; grokplug feeds ``data.retain``
    as given. See docs/fidelity.md.

    ``strength_param`` is ``alpha`` (the noise scale); higher α = stronger forgetting.

    Hyperparameters: ``alpha``.
    """

    name = "fisher"
    domain: ClassVar[str] = "vision"
    description = "Fisher forgetting: Gaussian noise scaled by the inverse retain-set Fisher (Golatkar et al. 2020)"
    iterative = False
    strength_param = "alpha"
    strength_sweep = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)  # weakest first: a higher α adds more noise
    defaults = {"alpha": 1e-6}
    cifar_defaults = {"alpha": 1e-6}  # the SSD baseline's value (ResNet-18 / ViT on CIFAR)

    def run(self, model: nn.Module, data: VisionData, **hp: Any) -> nn.Module:
        alpha = float(hp["alpha"])
        if not alpha >= 0:
            raise UsageError(f"alpha must be >= 0, got {alpha}")
        fisher = fisher_diagonal(model, data.retain)
        variance = fisher_noise_variance(model, fisher, data.num_classes, alpha)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in variance:
                    p.add_(variance[n].sqrt() * torch.randn_like(p))
        return model


@torch.no_grad()
def held_out_loss(model: nn.Module, data: VisionData) -> float:
    """Mean CE of ``model`` on ``data.val`` (else ``data.test``): the loss level of examples it never saw."""
    loader = data.val if data.val is not None else data.test
    if loader is None:
        raise UsageError("nabla-tau needs a val or test loader in the VisionData to set its forget-loss threshold")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for x, y in batches(loader, model_device(model)):
            total += float(F.cross_entropy(model(x), y, reduction="sum"))
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise UsageError("the held-out set is empty; nabla-tau cannot set its threshold")
    return total / count


class NablaTau(IterativeMethod):
    """∇τ (Trippa et al. 2024, arXiv 2403.14339): adaptive gradient ascent on forget, descent on retain.

    Each update pairs a retain batch with the next batch of an endlessly cycled forget loader and
    minimises ``alpha``·CE(retain) + (1 − ``alpha``)·mean_i ReLU(τ − CE_i(forget)). τ is the start
    model's mean CE on held-out data (:func:`held_out_loss`): a forget example is pushed up (ascent)
    only while its loss is below the loss of unseen data, and left alone once it reaches it, so the
    forget set ends looking like data the model never saw rather than being driven to any loss.
    An epoch is one pass over the retain loader.

    **Provenance, honestly:** no public code by the authors was found (searched: the code, docs,
    pages and issues indexes for the title, arXiv id 2403.14339, the authors' names, ``nabla_tau``,
    ``grad_tau``). The one public re-implementation found, okejka1/master_thesis ``unlearn_grad_tau.py``
    (commit ``eb0eef1``, a third party's, citing the paper's Algorithm 1 and §6.4), differs from this
    class in every one of these points, none changed here because that code is not the authors':

    * loss ``α·ReLU(τ − L_f)² + (1 − α)·L_r`` with α on the *forget* term, squared, and L_f the *batch*
      mean CE; here ``alpha`` weights the *retain* term and the ReLU is per example, not squared;
    * α decays linearly to 0 over all steps from α₀ = (5/3)·|D_f|/|D| (its reading of §6.4; 0.25 at a
      15 % forget rate); here ``alpha`` is constant (0.5);
    * τ is re-measured every epoch on a 1 000-example test subset; here it is measured once, at the start;
    * an epoch is one pass over the *forget* loader with the retain loader cycled; here the reverse;
    * AdamW, lr 1e-4, weight decay 1e-4, 10 epochs; here OPTML-style SGD (lr 0.03, momentum 0.9,
      weight decay 5e-4), 5 epochs (or the preset profile).

    So results here are "∇τ as grokplug reads the paper", not a reproduction. See docs/fidelity.md.

    Hyperparameters: ``alpha`` (retain weight, in [0, 1]), ``lr``, ``epochs``, ``momentum``,
    ``weight_decay``, ``max_steps``.
    """

    name = "nabla-tau"
    description = "∇τ: ascent on forget examples until their loss reaches held-out level, descent on retain"
    defaults = {"lr": 0.03, "epochs": 5, "alpha": 0.5, **OPTML_SGD, "max_steps": None}
    cifar_defaults = {"lr": 0.01}
    preset_defaults = PRESET_PROFILES

    def _unlearn(self, model: nn.Module, data: VisionData, budget: StepBudget, device: torch.device, **hp: Any) -> None:
        alpha = float(hp["alpha"])
        if not 0.0 <= alpha <= 1.0:
            raise UsageError(f"alpha must lie in [0, 1], got {alpha}")
        tau = held_out_loss(model, data)
        model.train()
        optimizer = make_optimizer(model, str(hp["optimizer"]), hp["lr"], hp["momentum"], hp["weight_decay"])
        forget = cycled(data.forget, device)
        for _ in range(int(hp["epochs"])):
            for (xr, yr), (xf, yf) in zip(batches(data.retain, device), forget, strict=False):
                forget_term = F.relu(tau - F.cross_entropy(model(xf), yf, reduction="none")).mean()
                sgd_step(budget, optimizer, alpha * F.cross_entropy(model(xr), yr) + (1 - alpha) * forget_term)
