"""Preset ``digits``: Omnigrok's large-init MNIST recipe on sklearn's bundled 8×8 digits (no download).

Recipe: ``load_digits`` (1 797 images), pixels / 16, a seeded stratified 250-image train set, the other
1 547 images for validation. MLP 64-200-200-10 ReLU, PyTorch default init and then **every parameter × 8**
(Omnigrok's α). MSE against one-hot targets (``F.mse_loss``, mean over all elements). Full-batch AdamW
lr 3e-3, weight decay 0.1, betas (0.9, 0.999), 8 000 steps, eval every 50. The large weights memorize the
train set with val ≈ 25-30 %; weight decay then shrinks them and val climbs past 90 %.
Control ``standard-init`` (α = 1): val ≈ 95 % as soon as train fits, i.e. comprehension, no grokking.

Measured on the 2-core CPU (torch 2.14.1, float32) with a plain full-batch loop (a scratch script, not
shipped, so the table has no command to rerun; the detector's figures below do) with the semantics of
``grokplug._train``: eval at step 0 and every ``eval_every`` steps, t = first eval at or above the level;
``torch.set_num_threads(1)`` for the 1-thread row. Step counts are reproducible; wall times depend on the
shared machine's load and are not fixed figures:

=========================  ======  ======  ======  ====================================
run (2 threads)            seed 0  seed 1  seed 2  note
=========================  ======  ======  ======  ====================================
train ≥ 99 % (t_mem)          800   1 100     900  val there: 24.0 / 31.2 / 28.4 %
val ≥ 90 % (t_gen)          3 100   3 200   3 550  t_gen / t_mem 2.9–3.9
val ≥ 95 %                  4 000       –       –
best val                   95.9 %  94.7 %  92.6 %
val at 8 000 steps         93.7 %  93.5 %  91.4 %
wall, 2 threads            15.5 s  14.2 s  13.2 s  8 000 steps, ~1.8 ms/step
wall, 1 thread             22.2 s  19.8 s  17.7 s  same steps ±50 (1-thread float sums differ)
standard-init: val@t_mem   96.7 %  96.4 %  94.3 %  train ≥ 99 % at step 50; best 97.0/97.1/95.2 %
standard-init: wall        19.2 s  23.8 s  19.8 s  1 thread: 16.6–18.2 s
=========================  ======  ======  ======  ====================================

grokplug's detector (``grokplug train digits --run-dir D --seed S [--control standard-init]``) labels
seeds 0-2 ``grokking`` (t_mem 850 / 1 150 / 950, t_gen 3 050 / 3 100 / 3 000, ratio 2.7–3.6, val at t_mem
24–31 %, θ_grok at 3 900 / 3 850 / 4 050) and the control ``comprehension``; that loop took 18–28 s per run
(52 s once under load).
Variants measured with 200 train images: the reference's lr 1e-3 / wd 0.3 (seed 0) reaches val 90 % at
3 500 with t_gen / t_mem only 2.3 over 10 000 steps; lr 3e-3 / wd 0.1 (seeds 0-5) gives val at t_mem
19–24 % but val at 8 000 of 89.9–91.5 % (below 90 % for seed 3), hence 250 images. t_gen scales with 1 / (lr · wd):
raising lr · wd further (lr 1e-2 / wd 0.1, lr 3e-3 / wd 0.3 or 1.0) lets val rise *during* memorization
(48–93 % at t_mem), i.e. no grokking. Wall times on this shared machine vary by up to ~1.5×.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._base import Preset, PresetData, data_from_indices, seeded_build

__all__ = ["DIGITS", "DigitsMLP", "load_digits_tensors", "make_digits_data", "make_digits_model"]

NUM_CLASSES = 10
NUM_PIXELS = 64


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    x.flags.writeable = False  # cached and shared: nobody may change it
    y.flags.writeable = False
    return x, y


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1 797 sklearn digits: ``x`` [1797, 64] float32 in [0, 1] (pixels / 16) and ``y`` [1797] long.

    Fresh tensors on every call (the parsed file is cached).
    """
    x, y = _digits_arrays()
    return torch.tensor(x), torch.tensor(y)


def stratified_split(
    labels: np.ndarray, n_train: int, n_val: int | None, seed: int
) -> tuple[list[int], list[int]]:
    """A seeded split with ``n_train`` images spread over the classes in proportion to their frequency.

    Each class gets ``floor(n_train * share)`` images; the leftover slots go to the classes with the largest
    remainders (ties by class id), so the result depends only on ``labels``, ``n_train`` and ``seed``.
    Validation is the rest, or a seeded random ``n_val`` of the rest. Both lists are sorted.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = n_train * counts / counts.sum()
    take = np.floor(quota).astype(int)
    by_remainder = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), i))
    for i in by_remainder[: n_train - int(take.sum())]:
        take[i] += 1
    train: list[int] = []
    for cls, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels == cls)
        train.extend(rng.permutation(members)[:k].tolist())
    rest = np.setdiff1d(np.arange(len(labels)), np.asarray(train, dtype=np.int64))
    if n_val is not None:
        rest = rng.permutation(rest)[:n_val]
    return sorted(int(i) for i in train), sorted(int(i) for i in rest)


def make_digits_data(config: Mapping[str, Any], seed: int) -> PresetData:
    """A stratified ``n_train`` / rest split of sklearn digits, seeded by ``seed``."""
    x, y = load_digits_tensors()
    n_train = int(config["n_train"])
    n_val = config.get("n_val")
    if not 0 < n_train < len(y):
        raise ValueError(f"n_train={n_train} must be between 1 and {len(y) - 1}")
    train_idx, val_idx = stratified_split(y.numpy(), n_train, None if n_val is None else int(n_val), seed)
    return data_from_indices(
        x,
        y,
        train_idx,
        val_idx,
        num_classes=NUM_CLASSES,
        info={
            "dataset": "sklearn-digits",
            "n_total": len(y),
            "n_train": len(train_idx),
            "n_val": len(val_idx),
        },
    )


class DigitsMLP(nn.Module):
    """64 → ``hidden_dim`` → … → 10 with ReLU (``depth`` Linear layers); every parameter × ``init_scale``.

    The large ``init_scale`` (Omnigrok's α) puts the weight norm far above the "Goldilocks" norm: the net
    memorizes the small train set first and generalizes only once weight decay has shrunk the weights.
    """

    def __init__(self, hidden_dim: int = 200, depth: int = 3, init_scale: float = 1.0) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth counts Linear layers and must be at least 2")
        dims = [NUM_PIXELS] + [hidden_dim] * (depth - 1) + [NUM_CLASSES]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            if i > 0:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(d_in, d_out))
        self.net = nn.Sequential(*layers)
        if init_scale != 1.0:
            with torch.no_grad():
                for param in self.parameters():
                    param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, 64] (or [batch, 8, 8]) pixels in [0, 1] → logits [batch, 10]."""
        return self.net(x.flatten(1))


def make_digits_model(config: Mapping[str, Any], seed: int) -> DigitsMLP:
    """A freshly initialised :class:`DigitsMLP`; the same (config, seed) always gives the same weights."""
    return seeded_build(
        seed,
        lambda: DigitsMLP(
            hidden_dim=int(config["hidden_dim"]),
            depth=int(config["depth"]),
            init_scale=float(config["init_scale"]),
        ),
    )


DIGITS = Preset(
    name="digits",
    description="sklearn digits, 250 train images, MLP with init ×8 and MSE (Omnigrok): memorizes, then generalizes",
    config={
        "task": "digits",
        "n_train": 250,
        "n_val": None,
        "hidden_dim": 200,
        "depth": 3,
        "init_scale": 8.0,
        "loss": "mse",
        "lr": 3e-3,
        "weight_decay": 0.1,
        "betas": [0.9, 0.999],
        "batch_size": None,
        "max_steps": 8000,
        "eval_every": 50,
        "save_every": 50,
    },
    make_data=make_digits_data,
    make_model=make_digits_model,
    controls={"standard-init": {"init_scale": 1.0}},
    control_label="comprehension",
)
