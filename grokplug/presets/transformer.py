"""Preset ``modular-transformer``: (a + b) mod p as tokens ``[a, b, =]`` through a 1-layer transformer.

Recipe (Nanda et al. 2023, scaled down for 2 CPU cores): p = 59, a seeded 40 % of the pairs for training
(1 392; same split as ``modular`` at that fraction), the rest (2 089) for validation. Token + learned position
embedding (d_model 64), one 4-head attention block, ReLU MLP 256, unembed; no LayerNorm. Full-batch AdamW
lr 1e-2, weight decay 1.0, betas (0.9, 0.999), cross-entropy, 3 000 steps, eval every 25.
Control ``no-grok`` (weight decay 0): train fits as fast, val stays where it was at memorization.

Measured on the 2-core CPU (torch 2.14.1, float32) with a plain full-batch loop (a scratch script, not
shipped, so the table has no command to rerun; the detector's figures below do) with the semantics of
``grokplug._train``: eval at step 0 and every ``eval_every`` steps, t = first eval at or above the level;
``torch.set_num_threads(1)`` for the 1-thread row. Step counts are reproducible; wall times depend on the
shared machine's load and are not fixed figures:

=====================  ======  ======  ======  =======================================
run                    seed 0  seed 1  seed 2  note
=====================  ======  ======  ======  =======================================
train ≥ 99 % (t_mem)       75      75      75  val there: 18.8 / 7.5 / 21.4 %
val ≥ 90 %                400   1 200     800
val ≥ 95 % (t_gen)        400   1 225     825  t_gen / t_mem 5–16
val at 3 000 steps      100 %  99.5 %   100 %
wall, 2 threads        38.2 s  36.6 s  36.7 s  3 000 steps, ~12.5 ms/step
wall, 1 thread         52.5 s  55.3 s  55.7 s  identical curves
no-grok: val           9.4 %   4.8 %  17.7 %  best over 3 000 steps (8.6 / 4.7 / 16.2 % at t_mem)
no-grok: wall (2 thr)  35.6 s  38.0 s  37.5 s  1 thread: 53–54 s
=====================  ======  ======  ======  =======================================

grokplug's detector (``grokplug train modular-transformer --run-dir D --seed S [--control no-grok]``)
labels seeds 0-2 ``grokking`` (t_mem 100, t_gen 425 / 1 225 / 850, θ_grok at 500 / 1 450 / 900) and the
control ``memorization``. That loop took 50–280 s per run: other jobs were loading this shared machine.

Why not the paper's settings: d_model 128 / d_mlp 512 costs ~5× per step (~60 ms), and at lr 1e-3 with 50 %
train val rose steadily from memorization (20 % → 95 % at 2 000 steps). Measured alternatives at d_model 64,
40 % train: lr 3e-3 grokked at 1 300 / 5 200 / 5 775 steps (too spread); lr 1e-2 with wd 0.5 at
1 425 / 2 550 / 2 150 with cleaner plateaus (t_gen / t_mem 14–26) but twice the steps; 45 % train at lr 3e-3
at 600–1 450 with val up to 31 % at t_mem. Nanda's betas (0.9, 0.98) grok at 400 / 975 / 1 125 but show
loss spikes at lr 1e-2 without LayerNorm (train acc dipping to 57–96 % for one eval, before and after
grokking); (0.9, 0.999) showed none in 3 000 steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._base import Preset, PresetData, data_from_indices, seeded_build
from .modular import modular_pairs, split_pairs

__all__ = ["MODULAR_TRANSFORMER", "OneLayerTransformer", "make_transformer_data", "make_transformer_model"]

SEQ_LEN = 3  # [a, b, "="]


def make_transformer_data(config: Mapping[str, Any], seed: int) -> PresetData:
    """All pairs as token sequences ``[a, b, p]`` (token ``p`` is "="), split like the ``modular`` preset.

    The split for a given (p, train_frac, seed) is the same as ``modular``'s, so the two presets can be compared
    on identical train / validation pairs.
    """
    p = int(config["p"])
    pairs, y = modular_pairs(p)
    x = torch.cat([pairs, torch.full((p * p, 1), p, dtype=pairs.dtype)], dim=1)
    train_idx, val_idx = split_pairs(p, float(config["train_frac"]), seed)
    return data_from_indices(
        x,
        y,
        train_idx,
        val_idx,
        num_classes=p,
        info={
            "dataset": f"modular-addition-p{p}-tokens",
            "p": p,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "vocab": p + 1,
            "seq_len": SEQ_LEN,
        },
    )


class OneLayerTransformer(nn.Module):
    """Token + position embedding → one causal multi-head attention block → ReLU MLP → unembed.

    No LayerNorm and no biases in attention or unembedding, as in Nanda et al. (2023). Only the logits at
    the last position ("=") are returned. In a single layer that position's output depends only on its own
    query, so attention and MLP are computed for that position alone (the other positions act only as keys
    and values): the result equals a full causal pass read at the last position, at a third of the cost.
    """

    def __init__(
        self, p: int, d_model: int, n_heads: int, d_mlp: int, seq_len: int = SEQ_LEN, init_scale: float = 1.0
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.embed = nn.Embedding(p + 1, d_model)  # token p is "="
        self.pos = nn.Parameter(torch.empty(seq_len, d_model))
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.k = nn.Linear(d_model, d_model, bias=False)
        self.v = nn.Linear(d_model, d_model, bias=False)
        self.o = nn.Linear(d_model, d_model, bias=False)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, p, bias=False)
        # Embeddings at std 1/sqrt(d_model) (Nanda's scale) instead of nn.Embedding's N(0, 1).
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        nn.init.normal_(self.pos, std=d_model**-0.5)
        if init_scale != 1.0:
            with torch.no_grad():
                for param in self.parameters():
                    param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, seq_len] long tokens → logits [batch, p] at the last position."""
        batch, seq = x.shape
        resid = self.embed(x) + self.pos[:seq]  # [B, S, D]
        last = resid[:, -1]  # [B, D]
        q = self.q(last).view(batch, self.n_heads, 1, self.d_head)
        k = self.k(resid).view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, S, dh]
        v = self.v(resid).view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)
        # The last position may attend to every position, so the causal mask removes nothing here.
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_head), dim=-1)  # [B, H, 1, S]
        last = last + self.o((attn @ v).reshape(batch, -1))
        last = last + self.mlp_out(torch.relu(self.mlp_in(last)))
        return self.unembed(last)


def make_transformer_model(config: Mapping[str, Any], seed: int) -> OneLayerTransformer:
    """A freshly initialised :class:`OneLayerTransformer`; the same (config, seed) always gives the same weights."""
    return seeded_build(
        seed,
        lambda: OneLayerTransformer(
            p=int(config["p"]),
            d_model=int(config["d_model"]),
            n_heads=int(config["n_heads"]),
            d_mlp=int(config["d_mlp"]),
            init_scale=float(config.get("init_scale", 1.0)),
        ),
    )


MODULAR_TRANSFORMER = Preset(
    name="modular-transformer",
    description="(a+b) mod p as tokens [a, b, =], 1-layer transformer (Nanda), full-batch AdamW wd 1: groks",
    config={
        "task": "modular-addition-tokens",
        "p": 59,
        "train_frac": 0.4,
        "d_model": 64,
        "n_heads": 4,
        "d_mlp": 256,
        "init_scale": 1.0,
        "loss": "ce",
        "lr": 1e-2,
        "weight_decay": 1.0,
        "betas": [0.9, 0.999],
        "batch_size": None,
        "max_steps": 3000,
        "eval_every": 25,
        "save_every": 50,
    },
    make_data=make_transformer_data,
    make_model=make_transformer_model,
    controls={"no-grok": {"weight_decay": 0.0}},
    control_label="memorization",
)
