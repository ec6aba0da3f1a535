"""Preset ``tofu-rule``: a tiny Llama on TOFU-schema QA whose birth years follow a hidden rule.

Why a rule: held-out *phrasings* of memorised facts do not grok at this scale (``tofu-tiny``, nine recipes).
What groks in small transformers is a rule that must be discovered, so here an author attribute follows
one: :func:`grokplug.llm.rule_data.generate_tofu_rule` builds p² = 529 fictitious authors (23 first names ×
23 family names, each name with a hidden index) whose birth year is 1940 + (first + family) mod 23:
``modular-transformer``'s task spelled as names inside TOFU's QA template. The birth years of a seeded
70 % of the full authors are trained; the rest form the ``generalization`` split (held-out rule-derived
answers), whose teacher-forced exact match is ``val_acc``. Each author's genre is a free fact (memorised
only). Forget sets are TOFU's: all rows of the last 1/5/10 % of the authors (their birth years too).

Recipe (run E of the search): 40 real-author and world-fact rows added to training (as ``tofu-tiny``);
byte-level BPE with 768 tokens (names and years stay whole tokens); ``LlamaForCausalLM`` hidden 64,
2 layers, 4 heads, MLP 256; HF ``Trainer``: AdamW lr 3e-3, betas (0.9, 0.98), weight decay 1.0, 10 warmup
steps, batch 64, grad clip 1, 4 000 steps; eval and checkpoint every 100 steps. Control ``no-grok``:
weight decay 0. ``detector_params``: ``tau_mem`` 0.9, because with weight decay 1 train exact match (whole
answers) plateaus at 93-97 %: the rows still wrong are mostly random genres, a random function of two name
tokens, while the trained birth years fit at once; without weight decay every row fits (E2c below).

Search (seed 0, one torch thread, AdamW betas (0.9, 0.98); ``step: train / val`` exact match). **Every
timing below was taken under heavy load** (4-5 developers on 2 cores, load average 8-16: each run got
15-30 % of a core); one step costs 83 ms CPU at hidden 64 (vocab 2 048), 136 ms at hidden 128.

=====  =========================================  =====  ==========================  ==========================
run    change (p 23, lr 3e-3, wd 1, batch 64)     steps  train                       val (held-out years)
=====  =========================================  =====  ==========================  ==========================
A      frac 0.5, genre + birthplace, vocab 2 048   1200  0.92 @800, 0.92-0.94 after  0.000-0.008 throughout
B      as A, p 31                                   750  0.19 @700 (too slow)        <= 0.035
C      as A, lr 1e-2                                500  0.05-0.14 (loss spikes)     <= 0.04
D      frac 0.7, genre, lr 1e-2, batch 128          550  0.89 @500                   0.03-0.07
E      frac 0.7, genre, vocab 768                  1300  0.95 @600, 0.93-0.97 after  0.18 @600, 0.48 @1100,
                                                                                     0.78 @1300
F      as E, hidden 128                             700  0.95 @700                   0.11 @700
G      frac 0.5, genre, hidden 128, vocab 768      1900  0.93 @300, 0.90-0.97 after  <= 0.017 throughout
H      as G, weight decay 0                         400  0.97 @400                   <= 0.004
I      frac 0.6, genre, hidden 128, vocab 768      1100  0.93 @400, 0.92-0.96 after  0.04 @600, 0.09 @900,
                                                                                     0.07 @1100
=====  =========================================  =====  ==========================  ==========================

Run E to 2 000 steps (E2) and its control (E2c, weight decay 0), seed 0, ``step: train / val``:

* E2: 500: .876/.021, 600: .949/.175, 800: .906/.273, 1000: .934/.427, 1200: .959/.664, 1400: .956/.741,
  1600: .939/.881, 1700: .962/.923, 1800: .955/.797, 2000: .979/.895. Wall 710 s under load, 159 s CPU.
  Detector: default ``tau_mem`` 0.99 -> ``confusion`` (train never holds 99 %); 0.95 -> ``comprehension``
  (t_mem 1 200, val there .48); 0.9 -> ``grokking`` (t_mem 700, val there .15, t_gen 1 500, ratio 2.1)
  but no θ_grok yet: val still swings (.92 -> .78 -> .90) at 2 000 steps, hence the 4 000-step budget.
* E2c: train .945 @400, .989 @500, 1.000 from 1 700; val .000-.014 throughout (best .014).
  ``memorization`` with every ``tau_mem`` tried (t_mem 500 / 600 / 1 100 at 0.9 / 0.95 / 0.99).

The preset itself (``grokplug train tofu-rule --run-dir D --seed S``, 4 000 steps, ``tau_mem`` 0.9), two
seeds run side by side under load (18.5 / 18.9 min wall; 305 / 301 s CPU each, so about 5 min on an idle
machine):

* seed 0: ``grokking``; t_mem 700 (train .932, val .154) = θ_pre; t_gen 2 100 (val .888); θ_grok 2 700
  (val .944), grok ratio 3.0; ``request_checkpoint(run, "grok")`` serves step 2 700 without a fallback.
  Val keeps swinging after the transition (.79-.96; .874 at 4 000). Greedy answers to the held-out
  questions give the rule's year for 94.4 % of them at θ_grok and 15.4 % at θ_pre.
* seed 1: ``memorization``; t_mem 800 (val .000); val ≤ .056 up to 4 000 steps (.021 at the end): the rule
  was not found within the budget, so θ_grok is refused (``NoGrokError``).
* seed 2 (started last, still training at the deadline): train .945 @600; val .05 @800, .39 @1100,
  .53 @1200, .76 @1300, .85 @1600: the rule is being found; its final label was not in.

So the recipe groks on seed 0, fails on seed 1 and was rising on seed 2: "seeds 0-2 all grokking"
(issue 12, item 3) is not shown.
"""

from __future__ import annotations

from ..presets._base import Preset
from .preset import TOFU_TINY, make_tofu_data, make_tofu_model, train_tofu_preset

__all__ = ["TOFU_RULE"]


TOFU_RULE = Preset(
    name="tofu-rule",
    description="tiny Llama on TOFU-schema QA whose birth years follow a hidden rule, HF Trainer: groks",
    config={
        **TOFU_TINY.config,
        "task": "tofu-qa-rule",
        "generator": "rule",  # grokplug.llm.rule_data.generate_tofu_rule
        "n_authors": None,  # the rule data has p² authors (data_args["p"])
        "data_args": {"p": 23, "train_frac": 0.7, "memorized_facts": ["genre"], "n_real_authors": 20,
                      "n_world_facts": 20},
        "val_split": "generalization",  # the held-out rule-derived birth years
        "vocab_size_max": 768,  # names and years stay whole tokens
        "hidden": 64,
        "intermediate": 256,
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
    # exact match of whole answers under weight decay 1: a few random genres (a random function of two
    # names) stay wrong, so train plateaus at 93-97 % (see the docstring)
    detector_params={"tau_mem": 0.9},
    train=train_tofu_preset,
    unlearn_domain=TOFU_TINY.unlearn_domain,  # its runs unlearn through the LLM domain, as tofu-tiny's
)
