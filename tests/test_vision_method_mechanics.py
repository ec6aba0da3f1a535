"""The vision methods' mechanics on softmax regression, where every gradient has a closed form.

For logits = X Wᵀ + b and mean cross-entropy, ∇_W = (P − Y)ᵀX / n and ∇_b = mean(P − Y), with P the
softmax and Y the one-hot labels. Each test predicts one update (or one quantity) from that formula,
written out here independently of the methods' code, so a flipped sign, a swapped weight or a skipped
term makes it fail.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grokplug.errors import UsageError
from grokplug.vision import methods, methods_salun_scrub_ssd
from grokplug.vision.data import VisionData
from grokplug.vision.methods import GA, RL, GradDiff, L1Sparse
from grokplug.vision.methods_salun_scrub_ssd import distill_kl, saliency_mask

C = 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _linear(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(4, C)


def _set(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 4, generator=_gen(seed)), torch.randint(0, C, (n,), generator=_gen(seed + 100))


def _data(forget: tuple[torch.Tensor, torch.Tensor], retain: tuple[torch.Tensor, torch.Tensor],
          batch: int = 1000, held_out: tuple[torch.Tensor, torch.Tensor] | None = None) -> VisionData:
    def loader(pair: tuple[torch.Tensor, torch.Tensor]) -> DataLoader:
        return DataLoader(TensorDataset(*pair), batch_size=batch, shuffle=False)

    return VisionData(forget=loader(forget), retain=loader(retain), num_classes=C,
                      test=loader(held_out) if held_out is not None else None)


def _ce_grads(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form mean-CE gradients of softmax regression."""
    with torch.no_grad():
        residual = F.softmax(x @ model.weight.T + model.bias, dim=1) - F.one_hot(y, C).float()
    return residual.T @ x / len(y), residual.mean(0)


def _state(model: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    return model.weight.detach().clone(), model.bias.detach().clone()


PLAIN_SGD = {"momentum": 0.0, "weight_decay": 0.0, "optimizer": "sgd"}


def test_ga_first_update_ascends_the_forget_loss() -> None:
    model, forget, retain = _linear(), _set(6, 1), _set(9, 2)
    w0, b0 = _state(model)
    gw, gb = _ce_grads(model, *forget)
    GA()(model, _data(forget, retain), lr=0.5, epochs=1, max_steps=1, **PLAIN_SGD)
    assert torch.allclose(model.weight, w0 + 0.5 * gw, atol=1e-6)  # θ + η∇CE_F: ascent
    assert torch.allclose(model.bias, b0 + 0.5 * gb, atol=1e-6)


def test_graddiff_first_update_weights_retain_and_forget() -> None:
    model, forget, retain = _linear(), _set(6, 3), _set(9, 4)
    w0, b0 = _state(model)
    fw, fb = _ce_grads(model, *forget)
    rw, rb = _ce_grads(model, *retain)
    GradDiff()(model, _data(forget, retain), lr=0.5, epochs=1, max_steps=1, retain_weight=0.8, **PLAIN_SGD)
    assert torch.allclose(model.weight, w0 - 0.5 * (0.8 * rw - 0.2 * fw), atol=1e-6)
    assert torch.allclose(model.bias, b0 - 0.5 * (0.8 * rb - 0.2 * fb), atol=1e-6)


def test_l1_sparse_schedule_and_penalty(monkeypatch: pytest.MonkeyPatch) -> None:
    # one step: CE descent on retain plus alpha · sign(θ) (the gradient of alpha‖θ‖₁, bias included)
    model, forget, retain = _linear(), _set(6, 5), _set(9, 6)
    w0, b0 = _state(model)
    rw, rb = _ce_grads(model, *retain)
    L1Sparse()(model, _data(forget, retain), lr=0.5, epochs=2, alpha=0.3, no_l1_epochs=0, max_steps=1, **PLAIN_SGD)
    assert torch.allclose(model.weight, w0 - 0.5 * (rw + 0.3 * w0.sign()), atol=1e-6)
    assert torch.allclose(model.bias, b0 - 0.5 * (rb + 0.3 * b0.sign()), atol=1e-6)
    # the schedule: alpha·(1 − e/(epochs − no_l1_epochs)) for e < epochs − no_l1_epochs, then 0
    weights: list[float] = []
    original = methods.finetune_epoch

    def spy(model: Any, loader: Any, optimizer: Any, budget: Any, l1_weight: float = 0.0) -> None:
        weights.append(l1_weight)
        original(model, loader, optimizer, budget, l1_weight)

    monkeypatch.setattr(methods, "finetune_epoch", spy)
    L1Sparse()(_linear(), _data(forget, retain), lr=0.0, epochs=4, alpha=0.3, no_l1_epochs=1, **PLAIN_SGD)
    assert weights == pytest.approx([0.3, 0.2, 0.1, 0.0])


def test_distill_kl_hand_worked() -> None:
    # row 1: teacher p = (3/4, 1/4) at T = 1, student uniform; row 2: student = teacher, KL 0
    teacher = torch.tensor([[math.log(3.0), 0.0], [1.0, -1.0]])
    student = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    kl_row1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert distill_kl(student, teacher, 1.0).item() == pytest.approx(kl_row1 / 2, rel=1e-5)
    # T = 2: p_t = softmax(ln3 / 2, 0) = (√3, 1) / (√3 + 1); the KL is multiplied by T² = 4
    pt = torch.tensor([math.sqrt(3), 1.0]) / (math.sqrt(3) + 1)
    kl_t2 = float((pt * (pt / 0.5).log()).sum())
    assert distill_kl(student[:1], teacher[:1], 2.0).item() == pytest.approx(4 * kl_t2, rel=1e-5)
    # direction: KL(teacher ‖ student), not KL(student ‖ teacher)
    reverse = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert distill_kl(student[:1], teacher[:1], 1.0).item() != pytest.approx(reverse, rel=1e-3)


def test_saliency_mask_keeps_the_largest_summed_forget_gradients() -> None:
    model, forget, retain = _linear(), _set(10, 7), _set(9, 8)
    data = _data(forget, retain, batch=4)  # 3 batches (4, 4, 2): per-batch mean gradients are summed
    gw, gb = torch.zeros(C, 4), torch.zeros(C)
    for start in range(0, 10, 4):
        w, b = _ce_grads(model, forget[0][start:start + 4], forget[1][start:start + 4])
        gw, gb = gw + w, gb + b
    saliency = torch.cat([gw.abs().flatten(), gb.abs()])  # |∇(−CE)| = |∇CE|
    keep = int(len(saliency) * 0.4)
    top = set(torch.topk(saliency, keep).indices.tolist())
    mask = saliency_mask(model, data, 0.4)
    chosen = torch.cat([mask["weight"].flatten(), mask["bias"]])
    assert set(torch.nonzero(chosen).flatten().tolist()) == top


def _label_spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, torch.Tensor]]:
    calls: list[tuple[int, torch.Tensor]] = []
    original = F.cross_entropy

    def spy(logits: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append((len(target), target.detach().clone()))
        return original(logits, target, *args, **kwargs)

    monkeypatch.setattr(methods.F, "cross_entropy", spy)
    return calls


@pytest.mark.parametrize("relabel", ["any", "other"])
def test_rl_relabels_the_forget_pass_and_keeps_retain_labels(monkeypatch: pytest.MonkeyPatch, relabel: str) -> None:
    forget, retain = _set(50, 9), _set(7, 10)  # sizes tell the two passes apart
    calls = _label_spy(monkeypatch)
    torch.manual_seed(0)
    RL()(_linear(), _data(forget, retain), lr=0.0, epochs=60, relabel=relabel, **PLAIN_SGD)
    forget_targets = torch.stack([t for n, t in calls if n == 50])
    retain_targets = [t for n, t in calls if n == 7]
    assert len(forget_targets) == 60 and len(retain_targets) == 60
    assert all(torch.equal(t, retain[1]) for t in retain_targets)  # retain pass: true labels
    same = float((forget_targets == forget[1]).double().mean())
    if relabel == "any":  # Unlearn-Saliency: randint(0, C), the true label 1/C of the time, uniform overall
        assert abs(same - 1 / C) < 0.04
        counts = torch.bincount(forget_targets.flatten(), minlength=C).double() / forget_targets.numel()
        assert torch.all((counts - 1 / C).abs() < 0.04)
    else:  # only wrong labels, uniform over the other C − 1 classes for every true class
        assert same == 0.0
        for c in range(C):
            drawn = forget_targets[:, forget[1] == c].flatten()
            shares = torch.bincount(drawn, minlength=C).double() / drawn.numel()
            assert shares[c] == 0 and torch.all((shares[torch.arange(C) != c] - 1 / (C - 1)).abs() < 0.06)
    with pytest.raises(UsageError, match="relabel"):
        RL()(_linear(), _data(forget, retain), relabel="wrong", **PLAIN_SGD)


def test_salun_uses_the_same_relabelling(monkeypatch: pytest.MonkeyPatch) -> None:
    forget, retain = _set(50, 11), _set(7, 12)
    calls = _label_spy(monkeypatch)
    torch.manual_seed(0)
    methods_salun_scrub_ssd.SalUn()(_linear(), _data(forget, retain), lr=0.0, epochs=30, mask_ratio=0.5, **PLAIN_SGD)
    forget_targets = torch.stack([t for n, t in calls if n == 50])
    assert abs(float((forget_targets == forget[1]).double().mean()) - 1 / C) < 0.05


def test_salun_masks_the_gradient_before_the_step() -> None:
    """Unlearn-Saliency multiplies ``param.grad`` by the mask before every step (``_apply_mask_to_grads``).

    Restoring masked-out weights afterwards hides a missing gradient mask from the weights, but not from
    the optimizer: Adam's moment estimates (and SGD's momentum between restores) would see gradients of
    frozen weights. The gradient the optimizer stepped with must be zero exactly outside the mask.
    """
    from torch.optim.optimizer import register_optimizer_step_post_hook

    forget, retain = _set(12, 13), _set(9, 14)
    data = _data(forget, retain)
    model = _linear()
    mask = saliency_mask(_linear(), data, 0.5)  # the same start, so the same mask
    stepped: list[dict[str, torch.Tensor]] = []

    def record(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        stepped.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})

    handle = register_optimizer_step_post_hook(record)  # global post-hooks run after SalUn's own
    try:
        torch.manual_seed(0)
        methods_salun_scrub_ssd.SalUn()(model, data, lr=0.1, epochs=1, max_steps=2, mask_ratio=0.5, **PLAIN_SGD)
    finally:
        handle.remove()
    assert len(stepped) == 2
    for grads in stepped:
        for name, grad in grads.items():
            outside = mask[name] == 0
            assert torch.all(grad[outside] == 0), f"{name}: gradient of masked-out weights reached the optimizer"
            assert torch.any(grad[~outside] != 0), f"{name}: no gradient inside the mask"
