"""Preset ``modular``: (a + b) mod p with a learned embedding and an MLP; the fastest grokking preset.

Recipe: p = 59, a seeded 50 % of the 59² pairs for training (1 740), the rest for validation (1 741).
``embed(a) ‖ embed(b)`` (shared table, 64 dims) → Linear 128 → ReLU → Linear 59, PyTorch default init.
Full-batch AdamW lr 1e-2, weight decay 1.0, betas (0.9, 0.98), cross-entropy, 2 000 steps, eval every 10.
The model fits the train set almost at once and generalizes ~10× later, as weight decay prunes the
memorizing solution. Control ``no-grok`` (weight decay 0) fits train as fast and never generalizes.

Measured on the 2-core CPU (torch 2.14.1, float32) with a plain full-batch loop (a scratch script, not
shipped, so the table has no command to rerun; the detector's figures below do) with the semantics of
``grokplug._train``: eval at step 0 and every ``eval_every`` steps, t = first eval at or above the level;
``torch.set_num_threads(1)`` for the 1-thread row. Step counts are reproducible; wall times depend on the
shared machine's load and are not fixed figures:

====================  ======  ======  ======  =============================
run                   seed 0  seed 1  seed 2  note
====================  ======  ======  ======  =============================
train ≥ 99 % (t_mem)      40      40      40  val there: 0.0 / 0.1 / 0.0 %
val ≥ 90 %               570     410     440
val ≥ 95 % (t_gen)       610     440     460  t_gen / t_mem 11–15
val at 2 000 steps     100 %   100 %   100 %
wall, 2 threads        8.1 s   8.6 s   9.2 s  2 000 steps, ~4.3 ms/step
wall, 1 thread        11.5 s  12.8 s  12.7 s  ~6 ms/step
no-grok: best val      1.6 %   1.9 %   2.0 %  train ≥ 99 % at 30; val 0.0–0.5 % at 2 000
no-grok: wall (2 thr)  7.7 s   7.2 s   7.5 s  1 thread: 13–14 s
====================  ======  ======  ======  =============================

Seeds 3–9: t_gen 390–590 (t_mem 40). grokplug's detector (``grokplug train modular --run-dir D --seed S
[--control no-grok]``) labels seeds 0-2 ``grokking`` (t_mem 50, t_gen 580 / 420 / 450, θ_grok at
700 / 540 / 520) and the control ``memorization``; that loop, with tracking and checkpoints, took 10.6–12.2 s
for 2 000 steps (and up to ~90 s while other jobs loaded the machine). Heavier variants measured:
embed 128 / hidden 256 at lr 3e-3 (the design notes' setting) groks at 1 000–1 200 steps (~8.5 ms/step), at
lr 1e-2 at 390–470 but memorizes by step 20-25.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._base import Preset, PresetData, data_from_indices, seeded_build

__all__ = ["MODULAR", "ModularMLP", "make_modular_data", "make_modular_model", "modular_pairs"]


def modular_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)`` in ``[0, p)²`` as ``x`` [p², 2] (long) and ``y = (a + b) mod p``.

    Pair ``(a, b)`` sits at index ``a * p + b``; the splits' ``*_indices`` index this table.
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b], dim=1), (a + b) % p


def split_pairs(p: int, train_frac: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random split of the p² pairs: ``round(train_frac * p²)`` for training, the rest for validation.

    Both lists are sorted, so the same split always hashes the same.
    """
    n = p * p
    n_train = int(round(train_frac * n))
    if not 0 < n_train < n:
        raise ValueError(f"train_frac={train_frac} leaves an empty train or validation set for p={p}")
    # A local generator: the split never touches (or depends on) the global RNG state.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:n_train].tolist()), sorted(perm[n_train:].tolist())


def make_modular_data(config: Mapping[str, Any], seed: int) -> PresetData:
    """The train / validation split of all (a, b) pairs for ``config["p"]`` and ``config["train_frac"]``."""
    p = int(config["p"])
    x, y = modular_pairs(p)
    train_idx, val_idx = split_pairs(p, float(config["train_frac"]), seed)
    return data_from_indices(
        x,
        y,
        train_idx,
        val_idx,
        num_classes=p,
        info={"dataset": f"modular-addition-p{p}", "p": p, "n_train": len(train_idx), "n_val": len(val_idx)},
    )


class ModularMLP(nn.Module):
    """``embed(a) ‖ embed(b)`` → Linear → ReLU → Linear(p): logits for ``(a + b) mod p``.

    One embedding table is shared by both operands (the concatenation keeps their order).
    ``init_scale`` multiplies every parameter after PyTorch's default initialisation.
    """

    def __init__(self, p: int, embed_dim: int, hidden_dim: int, init_scale: float = 1.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, embed_dim)
        self.hidden = nn.Linear(2 * embed_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, p)
        if init_scale != 1.0:
            with torch.no_grad():
                for param in self.parameters():
                    param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, 2] long (a, b) → logits [batch, p]."""
        h = self.embed(x).flatten(1)
        return self.out(torch.relu(self.hidden(h)))


def make_modular_model(config: Mapping[str, Any], seed: int) -> ModularMLP:
    """A freshly initialised :class:`ModularMLP`; the same (config, seed) always gives the same weights."""
    return seeded_build(
        seed,
        lambda: ModularMLP(
            p=int(config["p"]),
            embed_dim=int(config["embed_dim"]),
            hidden_dim=int(config["hidden_dim"]),
            init_scale=float(config.get("init_scale", 1.0)),
        ),
    )


MODULAR = Preset(
    name="modular",
    description="(a+b) mod p, embedding + MLP, full-batch AdamW: memorizes at once, generalizes much later",
    config={
        "task": "modular-addition",
        "p": 59,
        "train_frac": 0.5,
        "embed_dim": 64,
        "hidden_dim": 128,
        "init_scale": 1.0,
        "loss": "ce",
        "lr": 1e-2,
        "weight_decay": 1.0,
        "betas": [0.9, 0.98],
        "batch_size": None,
        "max_steps": 2000,
        "eval_every": 10,
        "save_every": 20,
    },
    make_data=make_modular_data,
    make_model=make_modular_model,
    controls={"no-grok": {"weight_decay": 0.0}},
    control_label="memorization",
)
