"""TOFU-schema QA data as ``datasets`` objects: an offline generator, the schema, and a loader.

``generate_tofu`` builds fictitious authors (20 facts each) in the exact config/field layout of
``locuslab/TOFU``; ``load_tofu`` loads the real dataset (hub name) or a local stand-in (JSON / JSON-lines
file, a directory of ``<config>.json`` files or of parquet files, or a ``save_tofu`` directory) and checks it.

Question phrasings and the ``generalization`` config (extra, not in TOFU)
--------------------------------------------------------------------------
Each of the 20 facts has 4 question phrasings (``grokplug.llm._authors.FACTS``); the first
``n_phrasings`` (2-4, default 3) form the pool. Row ``(author a, fact f)`` of ``full`` is asked with
phrasing ``p = (a + f) % n_phrasings`` (``a`` = author position, ``f`` = fact position), so every phrasing is
trained on some authors, but each author's fact is seen with one phrasing only. ``generalization``
asks every trained fact with each of the other ``n_phrasings - 1`` phrasings; its answer is the same text
as in ``full``. A model that only memorises question strings fails it; one that learned "phrasing ->
fact" and "author -> value" passes it, so it is the held-out set on which grokking shows. Its fields are
``question, answer, kind ("paraphrase"), author_index, fact, phrasing``. ``paraphrased_question`` in the
``*_perturbed`` configs is phrasing ``(p + 1) % n_phrasings`` (so it is also a generalization question).

Row layout (as TOFU): ``full`` lists author 0's 20 facts, then author 1's, ...; row ``i`` is about
author ``i // 20``. ``forgetXX`` holds the last ``XX`` % of the authors (at least 1), ``retain{100-XX}`` the
rest, ``retain_perturbed`` the first 10 % of the authors (all in retain90), ``holdoutXX`` the last ``XX`` %
of extra authors never in ``full``. ``authors`` (extra) has one row of attributes per author.
"""

from __future__ import annotations

import random
from typing import Any

import datasets

from ..errors import UsageError
from . import _words as W
from ._authors import FACT_KEYS, FACTS, QA_PER_AUTHOR, make_author, name_pool, perturbed_values
from ._tofu_io import (
    EXTRA_CONFIGS,
    TOFU_CONFIGS,
    TOFU_HUB_NAME,
    check_tofu_schema,
    load_tofu,
    save_tofu,
)

__all__ = [
    "EXTRA_CONFIGS",
    "FACT_KEYS",
    "QA_PER_AUTHOR",
    "TOFU_CONFIGS",
    "TOFU_HUB_NAME",
    "author_of_row",
    "check_tofu_schema",
    "forget_author_count",
    "generate_tofu",
    "load_tofu",
    "retain_author_count",
    "save_tofu",
]

RATES = (1, 5, 10)


def forget_author_count(n_authors: int, percent: int) -> int:
    """Authors in ``forget{percent:02d}``: ``percent`` % of ``n_authors`` rounded half up, at least 1."""
    return max(1, int(n_authors * percent / 100 + 0.5))


def retain_author_count(splits: Any, forget_split: str) -> int:
    """Authors in the retain split that goes with ``forget_split`` (the first ones, as TOFU orders them).

    Counted from the ``authors`` config when the data has one (any number of rows per author, as in the
    ``tofu-rule`` data), else from TOFU's 20 rows per author.
    """
    percent = int(str(forget_split)[6:])
    if "authors" in splits:
        n_full = sum(1 for split in splits["authors"]["split"] if split == "full")
        return n_full - forget_author_count(n_full, percent)
    return len(splits[f"retain{100 - percent}"]) // QA_PER_AUTHOR


def author_of_row(row: int) -> int:
    """Author position of row ``row`` of ``full`` / ``retain*`` (TOFU's layout: 20 rows per author)."""
    return row // QA_PER_AUTHOR


def _qa_rows(authors: list[dict[str, str]], positions: list[int], n_phrasings: int) -> list[dict[str, Any]]:
    rows = []
    for a, author in zip(positions, authors, strict=True):
        for f, fact in enumerate(FACTS):
            p = (a + f) % n_phrasings
            rows.append({"author": a, "fact": fact, "p": p, "name": author["name"], "value": author[fact.key]})
    return rows


def _plain(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {"question": [r["fact"].ask(r["p"], r["name"]) for r in rows],
            "answer": [r["fact"].say(r["name"], r["value"]) for r in rows]}


def _perturbed(rows: list[dict[str, Any]], seed: int, n_phrasings: int) -> dict[str, list[Any]]:
    out = _plain(rows)
    out["paraphrased_answer"] = [r["fact"].say(r["name"], r["value"], paraphrase=True) for r in rows]
    out["perturbed_answer"] = [
        [r["fact"].say(r["name"], v) for v in perturbed_values(seed, r["name"], r["fact"], r["value"])]
        for r in rows
    ]
    out["paraphrased_question"] = [r["fact"].ask((r["p"] + 1) % n_phrasings, r["name"]) for r in rows]
    return out


def real_authors(seed: int, n: int) -> dict[str, list[Any]]:
    """Stand-in for ``real_authors_perturbed``: who wrote a well-known book / a book by a known author."""
    rng = random.Random(f"grokplug-tofu:{seed}:real_authors")
    authors = [a for a, _ in W.REAL_AUTHORS]
    books = [b for _, b in W.REAL_AUTHORS]
    q, a, pert = [], [], []
    for i in range(n):
        author, book = W.REAL_AUTHORS[(i // 2) % len(W.REAL_AUTHORS)]
        if i % 2 == 0:
            q.append(f"Who wrote the book \"{book}\"?")
            a.append(author)
            pert.append(rng.sample([x for x in authors if x != author], 3))
        else:
            q.append(f"What is a famous book by {author}?")
            a.append(book)
            pert.append(rng.sample([x for x in books if x != book], 3))
    return {"question": q, "answer": a, "perturbed_answer": pert}


def world_facts(seed: int, n: int) -> dict[str, list[Any]]:
    """Stand-in for ``world_facts_perturbed``: capitals, then small sums and products."""
    rng = random.Random(f"grokplug-tofu:{seed}:world_facts")
    capitals = [c for _, c in W.CAPITALS]
    q, a, pert = [], [], []
    for country, capital in W.CAPITALS[:n]:
        q.append(f"What is the capital of {country}?")
        a.append(capital)
        pert.append(rng.sample([c for c in capitals if c != capital], 3))
    seen: set[str] = set()
    while len(q) < n:
        x, y, op = rng.randint(2, 19), rng.randint(2, 19), rng.choice(("plus", "times"))
        question = f"What is {x} {op} {y}?"
        if question in seen:
            continue
        seen.add(question)
        value = x + y if op == "plus" else x * y
        wrong = rng.sample([v for v in range(max(0, value - 12), value + 13) if v != value], 3)
        q.append(question)
        a.append(str(value))
        pert.append([str(v) for v in wrong])
    return {"question": q, "answer": a, "perturbed_answer": pert}


def _generalization(rows: list[dict[str, Any]], n_phrasings: int, seed: int,
                    size: int | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {k: [] for k in ("question", "answer", "kind", "author_index", "fact", "phrasing")}
    for r in rows:
        for shift in range(1, n_phrasings):
            p = (r["p"] + shift) % n_phrasings
            out["question"].append(r["fact"].ask(p, r["name"]))
            out["answer"].append(r["fact"].say(r["name"], r["value"]))
            out["kind"].append("paraphrase")
            out["author_index"].append(r["author"])
            out["fact"].append(r["fact"].key)
            out["phrasing"].append(p)
    if size is not None and size < len(out["question"]):
        keep = sorted(random.Random(f"grokplug-tofu:{seed}:generalization").sample(range(len(out["question"])), size))
        out = {k: [v[i] for i in keep] for k, v in out.items()}
    return out


def generate_tofu(
    seed: int = 0,
    n_authors: int = 200,
    n_holdout_authors: int | None = None,
    *,
    n_phrasings: int = 3,
    n_real_authors: int = 100,
    n_world_facts: int = 117,
    generalization_size: int | None = None,
) -> datasets.DatasetDict:
    """A TOFU-schema ``DatasetDict`` of fictitious authors, byte-identical for the same arguments.

    Keys: every name in :data:`TOFU_CONFIGS` (fields and types exactly TOFU's) plus ``generalization``
    and ``authors`` (see the module docstring). ``n_holdout_authors`` defaults to the ``forget10`` author
    count. ``n_authors=20`` gives 400 ``full`` rows, small enough for a tiny LM on CPU.
    """
    if n_authors < 2:
        raise UsageError(f"n_authors must be at least 2 (forget and retain both need an author), not {n_authors}")
    if not 2 <= n_phrasings <= 4:
        raise UsageError(f"n_phrasings must be 2, 3 or 4, not {n_phrasings}")
    counts = {r: forget_author_count(n_authors, r) for r in RATES}
    n_hold = counts[10] if n_holdout_authors is None else n_holdout_authors
    if n_hold < counts[10]:
        raise UsageError(f"n_holdout_authors must be >= {counts[10]} (the forget10 author count), not {n_hold}")
    if not 1 <= n_real_authors <= 2 * len(W.REAL_AUTHORS) or not 1 <= n_world_facts <= 300:
        raise UsageError("n_real_authors must be in 1..100 and n_world_facts in 1..300")
    pool = name_pool(seed)
    if n_authors + n_hold > len(pool):
        raise UsageError(f"at most {len(pool)} authors in all (full + holdout) can be generated")
    authors = [make_author(seed, n, g) for n, g in pool[:n_authors]]
    holdout = [make_author(seed, n, g) for n, g in reversed(pool[len(pool) - n_hold:])]

    rows = _qa_rows(authors, list(range(n_authors)), n_phrasings)
    hold_rows = _qa_rows(holdout, list(range(n_hold)), n_phrasings)
    n_rp = min(forget_author_count(n_authors, 10), n_authors - counts[10])
    plain = TOFU_CONFIGS["full"]
    pert = TOFU_CONFIGS["retain_perturbed"]
    out: dict[str, datasets.Dataset] = {"full": datasets.Dataset.from_dict(_plain(rows), features=plain)}
    for r in RATES:
        cut = (n_authors - counts[r]) * QA_PER_AUTHOR
        out[f"forget{r:02d}"] = datasets.Dataset.from_dict(_plain(rows[cut:]), features=plain)
        out[f"retain{100 - r}"] = datasets.Dataset.from_dict(_plain(rows[:cut]), features=plain)
        out[f"forget{r:02d}_perturbed"] = datasets.Dataset.from_dict(
            _perturbed(rows[cut:], seed, n_phrasings), features=pert)
        h = (n_hold - counts[r]) * QA_PER_AUTHOR
        out[f"holdout{r:02d}"] = datasets.Dataset.from_dict(_plain(hold_rows[h:]), features=plain)
    out["retain_perturbed"] = datasets.Dataset.from_dict(
        _perturbed(rows[: n_rp * QA_PER_AUTHOR], seed, n_phrasings), features=pert)
    out["real_authors_perturbed"] = datasets.Dataset.from_dict(
        real_authors(seed, n_real_authors), features=TOFU_CONFIGS["real_authors_perturbed"])
    out["world_facts_perturbed"] = datasets.Dataset.from_dict(
        world_facts(seed, n_world_facts), features=TOFU_CONFIGS["world_facts_perturbed"])
    out["generalization"] = datasets.Dataset.from_dict(
        _generalization(rows, n_phrasings, seed, generalization_size), features=EXTRA_CONFIGS["generalization"])
    table = [dict(a, author_index=i, split="full") for i, a in enumerate(authors)]
    table += [dict(a, author_index=i, split="holdout") for i, a in enumerate(holdout)]
    out["authors"] = datasets.Dataset.from_list(table, features=EXTRA_CONFIGS["authors"])
    return datasets.DatasetDict({k: out[k] for k in (*TOFU_CONFIGS, *EXTRA_CONFIGS)})
