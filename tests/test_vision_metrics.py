"""Vision metrics: hand-checked accuracy, MIA calibration (chance vs memorised), evaluate_vision fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from grokplug.plugins import GrokplugPluginManager
from grokplug.presets.digits import DigitsMLP, load_digits_tensors
from grokplug.vision.data import loaders_from_tensors, make_forget_split
from grokplug.vision.metrics import accuracy, evaluate_vision, mia_loss_lr, mia_svc_efficacy

DIGITS_X, DIGITS_Y = load_digits_tensors()
#: one fixed shuffle of the 1 797 digits; tests take disjoint slices of it
ORDER = torch.randperm(len(DIGITS_Y), generator=torch.Generator().manual_seed(0))


def loader(idx: torch.Tensor, batch_size: int = 64) -> DataLoader:
    return DataLoader(TensorDataset(DIGITS_X[idx], DIGITS_Y[idx]), batch_size=batch_size)


def trained_mlp(train_idx: torch.Tensor, *, init_scale: float = 1.0, steps: int = 300, seed: int = 0) -> DigitsMLP:
    """A 64-128-10 MLP trained full-batch with Adam/CE on ``train_idx`` until it fits them (~0.3 s)."""
    torch.manual_seed(seed)
    model = DigitsMLP(hidden_dim=128, depth=2, init_scale=init_scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = DIGITS_X[train_idx], DIGITS_Y[train_idx]
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


def test_accuracy_matches_a_hand_computed_value() -> None:
    # logits = (x0, x1, -x0 - x1): argmax is 0 if x0 is largest, 1 if x1 is, 2 if both are negative
    linear = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    model = torch.nn.Sequential(linear, torch.nn.Dropout(p=0.9))  # dropout would scramble a train-mode eval
    x = torch.tensor([[2.0, 1.0], [0.0, 3.0], [-1.0, -2.0], [5.0, 4.0], [1.0, 2.0]])
    predicted = [0, 1, 2, 0, 1]
    y = torch.tensor([0, 1, 2, 1, 0])  # 3 of 5 right
    assert [int(i) for i in (x @ linear.weight.T).argmax(-1)] == predicted
    model.train()
    assert accuracy(model, DataLoader(TensorDataset(x, y), batch_size=2)) == pytest.approx(3 / 5)
    assert model.training  # the caller's mode is restored


def test_mia_loss_lr_is_at_chance_on_identically_distributed_sets() -> None:
    """Forget and test both drawn from data the model never saw: the loss attack cannot tell them apart.

    On 200 vs 200 samples the per-draw SD was measured at 0.029 (40 draws, range 0.445-0.552), so each
    draw must lie within 0.1 of 0.5 (~3.4 SD) and the mean of 10 draws within 0.03 (~3.3 SEM).
    """
    model = trained_mlp(ORDER[:300], steps=100)  # any fixed model will do: none of the sets was trained on
    unseen = ORDER[300:]
    lr = []
    for draw in range(10):
        shuffled = unseen[torch.randperm(len(unseen), generator=torch.Generator().manual_seed(draw))]
        forget, test = shuffled[200:400], shuffled[400:600]
        lr.append(mia_loss_lr(model, loader(forget), loader(test), seed=draw))
        assert abs(lr[-1] - 0.5) < 0.1, f"draw {draw}: loss-LR attack accuracy {lr[-1]:.3f} on identical sets"
    assert abs(np.mean(lr) - 0.5) < 0.03


def _confidence_model() -> torch.nn.Module:
    """logits = (s, 0) for input s, so the confidence in label 0 is sigmoid(s)."""
    linear = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0], [0.0]]))
    return linear


def _scalar_loader(values: list[float], labels: list[int] | None = None) -> DataLoader:
    y = torch.tensor(labels if labels is not None else [0] * len(values))
    return DataLoader(TensorDataset(torch.tensor(values)[:, None], y), batch_size=3)


def test_mia_svc_efficacy_hand_worked() -> None:
    """Members (retain) at confidence σ(5) = 0.993, non-members (test) at σ(0) = 0.5: the SVC separates them.

    Of the 8 forget samples, 3 look like non-members (σ(0)) and 5 like members (σ(5)): OPTML's efficacy
    is the fraction predicted non-member, 3/8. Swapping the shadow labels would give 5/8; shadowing with
    the *last* instead of the first |test| retain samples would see σ(−5) members and flip it.
    """
    model = _confidence_model()
    retain = _scalar_loader([5.0, 5.1, 4.9, 5.0, 5.2, -5.0, -5.0, -5.0])  # only the first 4 (= |test|) are shadow
    test = _scalar_loader([0.0, 0.1, -0.1, 0.05])
    forget = _scalar_loader([0.0, 5.0, 0.02, 5.0, 5.05, -0.03, 4.95, 5.0])
    assert mia_svc_efficacy(model, retain, forget, test) == pytest.approx(3 / 8)
    # the feature is the probability of the *true* label: relabelling the forget set to class 1 turns
    # σ(5) into 1 − σ(5) ≈ 0.007, far from both shadow clusters but nearer the non-members
    relabelled = _scalar_loader([5.0, 5.0], labels=[1, 1])
    assert mia_svc_efficacy(model, retain, relabelled, test) == pytest.approx(1.0)


def test_mia_metrics_expose_a_memorised_forget_set() -> None:
    """A large-init MLP that fits 100 training digits (50 retain + 50 forget) to ~0 loss, vs 400 unseen.

    Measured (2 seeds, 2 sizes, 3 init scales): SVC efficacy 0.000 and loss-LR accuracy 0.63-0.73;
    the thresholds leave room for platform noise while staying far from chance.
    """
    train = ORDER[:100]
    retain, forget, test = train[:50], train[50:], ORDER[1000:1400]
    model = trained_mlp(train, init_scale=8.0)
    efficacy = mia_svc_efficacy(model, loader(retain), loader(forget), loader(test))
    attack_accuracy = mia_loss_lr(model, loader(forget), loader(test))
    assert efficacy < 0.1, f"forget samples should look like members, got efficacy {efficacy:.3f}"
    assert attack_accuracy > 0.6, f"the loss attack should recognise the forget set, got {attack_accuracy:.3f}"


def _digits_vision_data(with_test: bool = True) -> tuple[DigitsMLP, object]:
    train_idx, test_idx = ORDER[:200], ORDER[1000:1300]
    split = make_forget_split(DIGITS_Y[train_idx], rate=0.2, seed=0)
    data = loaders_from_tensors(
        DIGITS_X[train_idx], DIGITS_Y[train_idx], split, num_classes=10,
        test=(DIGITS_X[test_idx], DIGITS_Y[test_idx]) if with_test else None,
    )
    return trained_mlp(train_idx, steps=150), data


def test_evaluate_vision_fields_directions_and_drops() -> None:
    model, data = _digits_vision_data()
    start = evaluate_vision(model, data)
    assert set(start) == {"forget_acc", "retain_acc", "test_acc", "ua_optml", "mia_svc_efficacy", "mia_loss_lr"}
    assert start["ua_optml"] == pytest.approx(1.0 - start["forget_acc"])
    assert start["forget_acc"] == accuracy(model, data.forget)
    assert all(0.0 <= v <= 1.0 for v in start.values())
    with torch.no_grad():  # damage the model, then the drops are start - now
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5, alpha=1.0)
    now = evaluate_vision(model, data, start=start)
    assert now["retain_drop"] == pytest.approx(start["retain_acc"] - now["retain_acc"])
    assert now["test_drop"] == pytest.approx(start["test_acc"] - now["test_acc"])
    assert now["retain_drop"] > 0 and now["ua_optml"] == pytest.approx(1.0 - now["forget_acc"])
    assert evaluate_vision(model, data, seed=0) == evaluate_vision(model, data, seed=0)  # deterministic


def test_evaluate_vision_without_a_held_out_set_omits_test_fields() -> None:
    model, data = _digits_vision_data(with_test=False)
    result = evaluate_vision(model, data, start={"retain_acc": 1.0, "test_acc": 1.0})
    assert set(result) == {"forget_acc", "retain_acc", "ua_optml", "retain_drop"}


def test_hook_grokplug_register_metrics_vision(pm: GrokplugPluginManager) -> None:
    names = {"forget_acc", "retain_acc", "test_acc", "mia_svc_efficacy", "mia_loss_lr"}
    described = {d["name"]: d for d in pm.metrics.describe()}
    assert names <= set(described)
    assert all(described[n]["plugin"] == "grokplug.hooks.vision" for n in names)
    assert pm.metrics.get("MIA-Efficacy") is mia_svc_efficacy and pm.metrics.get("simple_mia") is mia_loss_lr
    model, data = _digits_vision_data()
    assert pm.metrics.get("forget_acc")(model, data) == accuracy(model, data.forget)
    assert pm.metrics.get("retain_acc")(model, data) == accuracy(model, data.retain)
    assert pm.metrics.get("test_acc")(model, data) == accuracy(model, data.test)
