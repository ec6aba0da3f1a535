"""Preset ``tofu-tiny``: a tiny Llama fine-tuned on generated TOFU-style QA with the HF Trainer.

Recipe: :func:`grokplug.llm.data.generate_tofu` with 10 authors (200 QA rows of ``full``, each fact asked
in one of 3 phrasings) plus 40 real-author and 40 world-fact QA rows (a from-scratch model has no
pretraining, so these stand in for it and make ``model_utility`` meaningful); byte-level BPE tokenizer
trained on the generated corpus (1 024 tokens, saved in ``<run>/tokenizer``); ``LlamaForCausalLM`` with
hidden 64, 2 layers, 4 heads, MLP 256 (~0.3 M parameters, float32). HF ``Trainer``: AdamW lr 1e-3,
betas (0.9, 0.98), weight decay 0.1, constant LR after 50 warmup steps, batch 32, grad-norm clip 1,
1 000 steps (~110 epochs). Every 50 steps :class:`grokplug.GrokTrackerCallback` records teacher-forced
exact match of the whole answer on the train rows (``train_acc``) and on the ``generalization`` split
(the same facts asked with the 2 phrasings not trained, ``val_acc``), and saves a checkpoint.
Control ``no-grok``: weight decay 0.

Measured with ``OMP_NUM_THREADS=1 grokplug train tofu-tiny --run-dir DIR`` (seed 0; torch 2.14.1, 2-core
CPU shared with other jobs): train exact match reaches 99 % at t_mem 450 (smoothed), where held-out
phrasings are already at 67 %; the best held-out level afterwards is v_max 73.5 % (gain 6.5 pts). The
detector labels it ``memorization``, no θ_grok: **it does not grok**, so requests for θ_grok need
``fallback="final"``. θ_pre = step 550 under the rule "best-val (early stopping never triggered)"
(early stopping on smoothed val from t_mem, patience 10 evals); re-read with the early-stop and
matched-train rules (``grokplug inspect DIR --json``: ``pre_step``, ``pre_matched_step``) both give 550 by
that same rule (``grokplug inspect DIR`` names the rule a run used; this docstring used to say 950, from a run whose
command and rule were not recorded).
Wall time 438 s (58 s CPU) with the machine heavily loaded; an earlier run took 127 s: the wall time
depends on the load and is not a fixed figure.
No-grok control (wd 0): see the README of issue 5 / the report; same shape.

Settings tried (1 500 steps unless noted; t_mem, val at t_mem → best held val; label), each a recipe
override of this preset (e.g. ``python examples/tofu.py --set weight_decay=1.0 --max-steps 1500``); the
exact command lines were not recorded, so treat these as leads, not reproducible figures:
wd 0.1, 20 authors: 850, 68 % → 76 %, memorization. wd 1.0, 20 authors: train never holds 99 %
(97-98 %), val 62-70 %, confusion. wd 1.0 + init ×3: same shape. wd 1.0, 10 authors: 400, 68 → 78 %.
lr 3e-3: 950, 67 → 75 %. 2 phrasings: 500, 82 → 86 %. 4 phrasings: 900, 60 → 58 %. wd 0.3 + init ×2:
450, 63 → 68 %. batch 16: train never holds 99 %, val ≤ 73 %. hidden 128: memorises by 200 with val
78 %, then 59-81 %. In every case held-out phrasings generalise *with* memorisation (about two thirds
at once) and barely improve afterwards: the model stores each fact keyed partly by the phrasing it was
trained on, and weight decay does not make the phrasing-invariant store cheaper, so nothing drives a
late transition at this scale. ``tofu-rule`` (:mod:`grokplug.llm.rule_preset`) is the TOFU-style preset
built to grok instead: there the held-out answers follow a hidden rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..presets._base import Preset, PresetData

__all__ = ["TOFU_TINY", "make_tofu_data", "make_tofu_model", "train_tofu_preset"]


def make_tofu_data(config: Mapping[str, Any], seed: int) -> PresetData:
    """The tokenised train / val QA as padded tensors: x = input ids, y = labels (-100 outside answers).

    Bookkeeping for the tracker and for analysis code that wants tensors; training itself goes through
    open-unlearning's ``QADataset`` and collator (:mod:`grokplug.llm.finetune`).
    """
    from .finetune import tofu_data

    data = tofu_data(config, seed)
    tensors = {}
    for name, dataset in (("train", data.train), ("val", data.val)):
        batch = data.collator([dataset[i] for i in range(len(dataset))])
        tensors[name] = (batch["input_ids"], batch["labels"])
    n_train, n_val = len(data.train), len(data.val)
    return PresetData(
        train_x=tensors["train"][0], train_y=tensors["train"][1], val_x=tensors["val"][0], val_y=tensors["val"][1],
        train_indices=list(range(n_train)), val_indices=list(range(n_train, n_train + n_val)),
        forget_eligible=list(range(n_train)), num_classes=len(data.tokenizer),
        info={"dataset": "tofu-generated" if not config.get("dataset") else str(config["dataset"]),
              "n_train": n_train, "n_val": n_val, "vocab": len(data.tokenizer)},
    )


def make_tofu_model(config: Mapping[str, Any], seed: int) -> torch.nn.Module:
    """The untrained model of a tofu config (the tiny Llama, or ``config["model"]`` loaded by name/path)."""
    from .model import model_from_config

    if not config.get("model") and not config.get("vocab_size"):  # a fresh config: size the vocab from the data
        from .finetune import tofu_data

        config = {**config, "vocab_size": len(tofu_data(config, seed).tokenizer)}
    return model_from_config(config, None, seed)


def train_tofu_preset(preset: Preset, run_dir: Any, **kwargs: Any) -> Any:
    """Every TOFU-style preset trains the same way: the HF Trainer with a GrokTrackerCallback."""
    from .finetune import train_tofu

    return train_tofu(preset, run_dir, **kwargs)


TOFU_TINY = Preset(
    name="tofu-tiny",
    description="tiny Llama on generated TOFU-style QA, HF Trainer + weight decay (LLM unlearning path)",
    config={
        "task": "tofu-qa",
        "model": None,  # a name or path of any AutoModelForCausalLM replaces the tiny Llama
        "dataset": None,  # None: generated offline; else a locally saved TOFU (locuslab/TOFU layout)
        "n_authors": 10,
        "data_args": {"n_real_authors": 40, "n_world_facts": 40},
        "train_split": "full",
        "extra_train_splits": ["real_authors_perturbed", "world_facts_perturbed"],
        "val_split": "generalization",
        "vocab_size_max": 1024,
        "hidden": 64,
        "layers": 2,
        "heads": 4,
        "intermediate": 256,
        "max_positions": 128,
        "max_length": 128,
        "loss": "ce",
        "init_scale": 1.0,
        "lr": 1e-3,
        "weight_decay": 0.1,
        "betas": [0.9, 0.98],
        "warmup_steps": 50,
        "max_grad_norm": 1.0,
        "batch_size": 32,
        "max_steps": 1000,
        "eval_every": 50,
        "save_every": 50,
    },
    make_data=make_tofu_data,
    make_model=make_tofu_model,
    controls={"no-grok": {"weight_decay": 0.0}},
    control_label="memorization",
    train=train_tofu_preset,
    unlearn_domain="llm",
)
