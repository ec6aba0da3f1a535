"""TOFU-schema QA where one fact of every author follows a hidden rule: the ``tofu-rule`` preset's data.

Authors and the rule
--------------------
The authors are every pair of ``p`` first names and ``p`` family names (``p²`` fictitious authors). Each
first name and each family name carries a hidden index in ``0..p-1`` (seeded permutations), and an author's
birth year is ``1940 + (first index + family index) mod p``: modular addition, spelled as names. Nothing in
the data states the indices; a model can only answer an unseen author's birth year by discovering the rule
from the birth years it was trained on. The author's other facts (``memorized_facts``, drawn as in
:func:`grokplug.llm.data.generate_tofu`) are free values that can only be memorised.

Splits
------
A seeded ``n_holdout`` of the pairs are TOFU's holdout authors (never trained). Of the rest (the ``full``
authors), a seeded ``train_frac`` have their birth-year row in ``full`` (trained); for the others it is held
out and forms the ``generalization`` config (``kind = "rule"``), the held-out rule-derived answers whose
accuracy the detector watches. ``full`` lists each author's rows together (memorised facts, then the birth
year when trained), authors in a seeded order; ``forgetXX`` holds every row of the last ``XX`` % of the full
authors (TOFU's forget sets: all rows of the forgotten authors), ``retain{100-XX}`` the rest,
``retain_perturbed`` the first 10 % of the authors, ``holdoutXX`` the rows (all facts, birth year included)
of the last ``XX`` % of the holdout authors. Fields and types are exactly TOFU's (checked by
:func:`grokplug.llm.data.check_tofu_schema`); ``authors`` (extra) has TOFU's author fields and ``rule``
(extra) each author's hidden indices and which split its birth year is in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import datasets

from ..errors import UsageError
from . import _words as W
from ._authors import FACT_KEYS, FACTS, Fact, make_author, perturbed_values
from ._tofu_io import EXTRA_CONFIGS, TOFU_CONFIGS
from .data import RATES, forget_author_count, real_authors, world_facts

__all__ = ["RULE_CONFIG", "RULE_FACT", "YEAR0", "generate_tofu_rule", "rule_year"]

RULE_FACT = "birth_year"
YEAR0 = 1940  # birth years 1940 .. 1940 + p - 1 (the fact pool spans 1940-1995, so p <= 56)
_S, _I = datasets.Value("string"), datasets.Value("int64")
#: The ``rule`` config: per author, the hidden indices and where its birth-year row went.
RULE_CONFIG = datasets.Features({"author_index": _I, "name": _S, "first_index": _I, "last_index": _I,
                                 "birth_year": _S, "birth_year_split": _S})
_FACTS_BY_KEY = dict(zip(FACT_KEYS, FACTS, strict=True))


def rule_year(first_index: int, last_index: int, p: int) -> int:
    """The hidden rule: the birth year of the author whose names carry these indices."""
    return YEAR0 + (first_index + last_index) % p


def _names(seed: int, p: int) -> tuple[list[tuple[str, str]], list[str]]:
    """``p`` (first name, gender) and ``p`` family names, each list in hidden-index order (seeded)."""
    rng = random.Random(f"grokplug-tofu-rule:{seed}:names")
    firsts = [(f, g) for g, pool in (("male", W.FIRST_MALE), ("female", W.FIRST_FEMALE),
                                     ("non-binary", W.FIRST_NEUTRAL)) for f in pool]
    return rng.sample(firsts, p), rng.sample(W.LAST, p)


def _row(fact: Fact, author: dict[str, Any], seed: int) -> dict[str, Any]:
    name, value = author["name"], author[fact.key]
    return {"question": fact.ask(0, name), "answer": fact.say(name, value),
            "paraphrased_answer": fact.say(name, value, paraphrase=True),
            "perturbed_answer": [fact.say(name, v) for v in perturbed_values(seed, name, fact, value)],
            "paraphrased_question": fact.ask(1, name)}


def _table(rows: list[dict[str, Any]], config: str) -> datasets.Dataset:
    features = TOFU_CONFIGS[config]
    return datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


def _author_rows(authors: list[dict[str, Any]], facts: Sequence[Fact], seed: int) -> list[dict[str, Any]]:
    """Every row of these authors, author by author; an author's rule row only when ``train_rule``."""
    rows = []
    for author in authors:
        keys = [f for f in facts] + ([_FACTS_BY_KEY[RULE_FACT]] if author["train_rule"] else [])
        rows += [_row(fact, author, seed) for fact in keys]
    return rows


def generate_tofu_rule(
    seed: int = 0,
    p: int = 23,
    *,
    train_frac: float = 0.5,
    memorized_facts: Sequence[str] = ("genre", "birthplace"),
    n_holdout: int | None = None,
    n_real_authors: int = 20,
    n_world_facts: int = 20,
) -> datasets.DatasetDict:
    """A TOFU-schema ``DatasetDict`` of ``p²`` authors whose birth years follow the hidden rule.

    Byte-identical for the same arguments. ``n_holdout`` defaults to the ``forget10`` author count of the
    full authors. Keys: every name in :data:`~grokplug.llm.data.TOFU_CONFIGS`, then ``generalization``,
    ``authors`` and ``rule`` (see the module docstring).
    """
    if not 5 <= p <= 56:
        raise UsageError(f"p must be in 5..56 (birth years 1940..1995), not {p}")
    if not 0.0 < train_frac < 1.0:
        raise UsageError(f"train_frac must be strictly between 0 and 1, not {train_frac}")
    unknown = [k for k in memorized_facts if k not in _FACTS_BY_KEY or k in (RULE_FACT, "first_pub_year")]
    if unknown:
        raise UsageError(f"memorized_facts {unknown} are not free facts; choose from "
                         f"{[k for k in FACT_KEYS if k not in (RULE_FACT, 'first_pub_year')]}")
    firsts, lasts = _names(seed, p)
    pairs = [(i, j) for i in range(p) for j in range(p)]
    random.Random(f"grokplug-tofu-rule:{seed}:order").shuffle(pairs)
    n_hold = forget_author_count(len(pairs), 10) if n_holdout is None else int(n_holdout)
    n_full = len(pairs) - n_hold
    if n_hold < forget_author_count(n_full, 10) or n_full < 10:
        raise UsageError(f"n_holdout={n_hold} leaves too few full authors or fewer than the forget10 count")
    n_train_rule = round(train_frac * n_full)
    train_rule = set(random.Random(f"grokplug-tofu-rule:{seed}:train").sample(range(n_full), n_train_rule))
    authors: list[dict[str, Any]] = []
    for position, (i, j) in enumerate(pairs):
        (first, gender), last = firsts[i], lasts[j]
        author: dict[str, Any] = make_author(seed, f"{first} {last}", gender)
        debut_age = int(author["first_pub_year"]) - int(author["birth_year"])
        year = rule_year(i, j, p)
        author.update(birth_year=str(year), first_pub_year=str(year + debut_age))
        author.update(first_index=i, last_index=j, train_rule=position in train_rule)
        authors.append(author)
    full_authors, holdout = authors[:n_full], authors[n_full:]
    facts = [_FACTS_BY_KEY[k] for k in memorized_facts]
    out: dict[str, datasets.Dataset] = {"full": _table(_author_rows(full_authors, facts, seed), "full")}
    for r in RATES:
        cut = n_full - forget_author_count(n_full, r)
        forget_rows, retain_rows = _author_rows(full_authors[cut:], facts, seed), _author_rows(full_authors[:cut], facts, seed)
        out[f"forget{r:02d}"] = _table(forget_rows, "full")
        out[f"retain{100 - r}"] = _table(retain_rows, "full")
        out[f"forget{r:02d}_perturbed"] = _table(forget_rows, "retain_perturbed")
        hold = [dict(a, train_rule=True) for a in holdout[n_hold - forget_author_count(n_full, r):]]
        out[f"holdout{r:02d}"] = _table(_author_rows(hold, facts, seed), "full")
    n_rp = forget_author_count(n_full, 10)
    out["retain_perturbed"] = _table(_author_rows(full_authors[:n_rp], facts, seed), "retain_perturbed")
    out["real_authors_perturbed"] = datasets.Dataset.from_dict(
        real_authors(seed, n_real_authors), features=TOFU_CONFIGS["real_authors_perturbed"])
    out["world_facts_perturbed"] = datasets.Dataset.from_dict(
        world_facts(seed, n_world_facts), features=TOFU_CONFIGS["world_facts_perturbed"])
    year_fact = _FACTS_BY_KEY[RULE_FACT]
    held = [(k, a) for k, a in enumerate(full_authors) if not a["train_rule"]]
    out["generalization"] = datasets.Dataset.from_dict(
        {"question": [year_fact.ask(0, a["name"]) for _, a in held],
         "answer": [year_fact.say(a["name"], a[RULE_FACT]) for _, a in held],
         "kind": ["rule"] * len(held), "author_index": [k for k, _ in held], "fact": [RULE_FACT] * len(held),
         "phrasing": [0] * len(held)}, features=EXTRA_CONFIGS["generalization"])
    author_fields = list(EXTRA_CONFIGS["authors"])
    table = [{**{k: a[k] for k in author_fields if k in a}, "author_index": k, "split": "full"}
             for k, a in enumerate(full_authors)]
    table += [{**{k: a[k] for k in author_fields if k in a}, "author_index": k, "split": "holdout"}
              for k, a in enumerate(holdout)]
    out["authors"] = datasets.Dataset.from_list(table, features=EXTRA_CONFIGS["authors"])
    rule_rows = [{"author_index": k if k < n_full else k - n_full, "name": a["name"], "first_index": a["first_index"],
                  "last_index": a["last_index"], "birth_year": a[RULE_FACT],
                  "birth_year_split": "holdout" if k >= n_full else "train" if a["train_rule"] else "heldout"}
                 for k, a in enumerate(full_authors + holdout)]
    out["rule"] = datasets.Dataset.from_list(rule_rows, features=RULE_CONFIG)
    return datasets.DatasetDict({k: out[k] for k in (*TOFU_CONFIGS, "generalization", "authors", "rule")})
