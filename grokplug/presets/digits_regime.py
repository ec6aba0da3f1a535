"""Presets in the paper's regime (Fig. 1a): an early val peak, an overfitting decline, then a late grok.

RECIPE_TABLE_PLACEHOLDER
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import Preset, PresetData, data_from_indices, seeded_build
from .digits import NUM_CLASSES, DigitsMLP, load_digits_tensors, stratified_split

__all__ = ["DIGITS_NOISY", "DIGITS_NOISY_CNN", "DigitsCNN", "flip_labels", "make_noisy_digits_data"]


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    """A copy of ``labels`` with a seeded ``round(fraction * n)`` of them moved to another class (uniformly
    among the other ``num_classes - 1``); also the flipped positions, sorted."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"label_noise={fraction} must lie in [0, 1)")
    rng = np.random.default_rng(seed + 1_000_003)  # a stream apart from the split's
    n = len(labels)
    flipped = np.sort(rng.choice(n, size=round(fraction * n), replace=False))
    shift = rng.integers(1, num_classes, size=len(flipped))
    out = labels.clone()
    at = torch.as_tensor(flipped, dtype=torch.long)
    out[at] = (labels[at] + torch.as_tensor(shift, dtype=torch.long)) % num_classes
    return out, [int(i) for i in flipped]


def make_noisy_digits_data(config: Mapping[str, Any], seed: int) -> PresetData:
    """A stratified ``n_train`` / rest split of sklearn digits; ``label_noise`` of the train labels flipped."""
    x, y = load_digits_tensors()
    n_train = int(config["n_train"])
    if not 0 < n_train < len(y):
        raise ValueError(f"n_train={n_train} must be between 1 and {len(y) - 1}")
    train_idx, val_idx = stratified_split(y.numpy(), n_train, None, seed)
    clean = data_from_indices(x, y, train_idx, val_idx, num_classes=NUM_CLASSES, info={})
    noisy, flipped = flip_labels(clean.train_y, float(config["label_noise"]), NUM_CLASSES, seed)
    info = {
        "dataset": "sklearn-digits", "n_total": len(y), "n_train": len(train_idx), "n_val": len(val_idx),
        "label_noise": float(config["label_noise"]), "n_flipped": len(flipped),
    }
    return PresetData(
        train_x=clean.train_x, train_y=noisy, val_x=clean.val_x, val_y=clean.val_y, train_indices=train_idx,
        val_indices=val_idx, forget_eligible=clean.forget_eligible, num_classes=NUM_CLASSES, info=info,
    )


class DigitsCNN(nn.Module):
    """8×8 digit → Conv 3×3 (``channels``) → ReLU → Conv 3×3 (2·``channels``) → ReLU → max-pool 2 →
    Linear ``hidden_dim`` → ReLU → Linear 10; every parameter × ``init_scale`` after PyTorch's init."""

    def __init__(self, channels: int = 16, hidden_dim: int = 128, init_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.fc1 = nn.Linear(2 * channels * 16, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, NUM_CLASSES)
        if init_scale != 1.0:
            with torch.no_grad():
                for param in self.parameters():
                    param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, 64] or [batch, 8, 8] pixels in [0, 1] → logits [batch, 10]."""
        h = F.relu(self.conv1(x.reshape(-1, 1, 8, 8)))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def make_regime_model(config: Mapping[str, Any], seed: int) -> nn.Module:
    """The preset's MLP or CNN (``arch``), freshly initialised; the same (config, seed) gives the same weights."""
    scale = float(config["init_scale"])
    if config["arch"] == "cnn":
        return seeded_build(seed, lambda: DigitsCNN(int(config["channels"]), int(config["hidden_dim"]), scale))
    return seeded_build(seed, lambda: DigitsMLP(int(config["hidden_dim"]), int(config["depth"]), scale))


_RECIPE: dict[str, Any] = {
    "task": "digits-noisy",
    "n_train": 300,
    "label_noise": 0.3,
    "arch": "mlp",
    "hidden_dim": 256,
    "depth": 3,
    "channels": None,
    "init_scale": 2.0,
    "loss": "ce",
    "lr": 3e-3,
    "weight_decay": 0.3,
    "betas": [0.9, 0.999],
    "batch_size": None,
    "max_steps": 15000,
    "eval_every": 100,
    "save_every": 100,
    "flush_denormal": True,
}

DIGITS_NOISY = Preset(
    name="digits-noisy",
    description="sklearn digits, 300 train images with 30 % of labels flipped, MLP ×2 init, CE, weight decay: "
    "early val peak, then overfitting decline (the paper's regime; see the docstring for how far it gets)",
    config=_RECIPE,
    make_data=make_noisy_digits_data,
    make_model=make_regime_model,
    controls={"no-wd": {"weight_decay": 0.0}},
    control_label="memorization",
)

DIGITS_NOISY_CNN = Preset(
    name="digits-noisy-cnn",
    description="the digits-noisy recipe with a small CNN (2 conv layers + MLP head), the paper's model family",
    config={**_RECIPE, "task": "digits-noisy-cnn", "arch": "cnn", "channels": 8, "hidden_dim": 128, "depth": None},
    make_data=make_noisy_digits_data,
    make_model=make_regime_model,
    controls={"no-wd": {"weight_decay": 0.0}},
    control_label="memorization",
)
