"""Preset ``tofu-rule``: a tiny Llama on TOFU-schema QA whose birth years follow a hidden rule.

Why a rule: held-out *phrasings* of memorised facts do not grok at this scale (``tofu-tiny``, nine recipes).
What groks in small transformers is a rule that must be discovered, so here an author attribute follows
one: :func:`grokplug.llm.rule_data.generate_tofu_rule` builds p² = 529 fictitious authors (23 first names ×
23 family names, each name with a hidden index) whose birth year is 1940 + (first + family) mod 23 —
``modular-transformer``'s task spelled as names inside TOFU's QA template. The birth years of a seeded
half of the authors are trained; the other half form the ``generalization`` split (held-out rule-derived
answers), whose teacher-forced exact match is ``val_acc``. Each author's genre is a free fact (memorised
only). Forget sets are TOFU's: all rows of the last 1/5/10 % of the authors (also their birth years).

Recipe: 40 real-author and world-fact rows added to training (as ``tofu-tiny``); byte-level BPE with 768
tokens (names and years stay whole tokens); ``LlamaForCausalLM`` hidden 128, 2 layers, 4 heads, MLP 512;
HF ``Trainer``: AdamW lr 3e-3, betas (0.9, 0.98), weight decay 1.0, 10 warmup steps, batch 64, grad clip 1;
eval and checkpoint every 100 steps. Control ``no-grok``: weight decay 0.
``detector_params``: ``tau_mem`` 0.95, because train exact match (whole answers) plateaus at 96-97 %: the
few rows still wrong are random genres, a random function of two name tokens that a small model stores
slowly (with weight decay 0 too), while the rule rows are fitted at once.

SEARCH_RESULTS
"""

from __future__ import annotations

from typing import Any

from ..presets._base import Preset
from .preset import TOFU_TINY, make_tofu_data, make_tofu_model

__all__ = ["TOFU_RULE"]


def _train(preset: Preset, run_dir: Any, **kwargs: Any) -> Any:
    from .finetune import train_tofu

    return train_tofu(preset, run_dir, **kwargs)


TOFU_RULE = Preset(
    name="tofu-rule",
    description="tiny Llama on TOFU-schema QA whose birth years follow a hidden rule, HF Trainer: groks",
    config={
        **TOFU_TINY.config,
        "task": "tofu-qa-rule",
        "generator": "rule",  # grokplug.llm.rule_data.generate_tofu_rule
        "n_authors": None,  # the rule data has p² authors (data_args["p"])
        "data_args": {"p": 23, "train_frac": 0.5, "memorized_facts": ["genre"], "n_real_authors": 20,
                      "n_world_facts": 20},
        "val_split": "generalization",  # the held-out rule-derived birth years
        "vocab_size_max": 768,  # names and years stay whole tokens
        "hidden": 128,
        "intermediate": 512,
        "max_length": 64,
        "max_positions": 64,
        "lr": 3e-3,
        "weight_decay": 1.0,
        "warmup_steps": 10,
        "batch_size": 64,
        "max_steps": 4000,
        "eval_every": 100,
        "save_every": 100,
    },
    make_data=make_tofu_data,
    make_model=make_tofu_model,
    controls={"no-grok": {"weight_decay": 0.0}},
    control_label="memorization",
    # exact match of whole answers: a few random genres (a random function of two names) stay wrong for
    # long, so train plateaus at 96-97 % before the rule is found (see the docstring)
    detector_params={"tau_mem": 0.95},
    train=_train,
)
