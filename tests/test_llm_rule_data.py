"""The tofu-rule data: TOFU's schema, TOFU's forget sets, and a hidden rule that really fixes the held-out years."""

from __future__ import annotations

import re

import pytest

from grokplug.errors import UsageError
from grokplug.llm.data import TOFU_CONFIGS, check_tofu_schema, forget_author_count
from grokplug.llm.rule_data import generate_tofu_rule, rule_year
from grokplug.llm.rule_preset import TOFU_RULE

YEAR = re.compile(r"^(.+) was born in the year (\d{4})\.$")
P = 11  # small enough to check exhaustively in a fraction of a second


@pytest.fixture(scope="module")
def data():
    return generate_tofu_rule(seed=3, p=P, train_frac=0.6)


def _name_of(question: str) -> str:
    for pattern in (r"What genre does (.+) write\?", r"Where was (.+) born\?", r"In which year was (.+) born\?"):
        if m := re.fullmatch(pattern, question):
            return m.group(1)
    raise AssertionError(f"unexpected question {question!r}")


def test_every_tofu_config_has_tofus_schema(data):
    for config in TOFU_CONFIGS:
        check_tofu_schema(data[config], config, check_lengths=True)
    assert set(TOFU_CONFIGS) | {"generalization", "authors", "rule"} == set(data)


def test_forget_sets_are_all_rows_of_the_last_authors(data):
    full_names = [a for a, s in zip(data["authors"]["name"], data["authors"]["split"], strict=True) if s == "full"]
    n_full = len(full_names)
    assert n_full + forget_author_count(n_full, 10) <= P * P
    for rate in (1, 5, 10):
        forget, retain = data[f"forget{rate:02d}"], data[f"retain{100 - rate}"]
        k = forget_author_count(n_full, rate)
        assert {_name_of(q) for q in forget["question"]} == set(full_names[n_full - k:])
        assert not {_name_of(q) for q in retain["question"]} & set(full_names[n_full - k:])
        # TOFU: retain + forget is full, in order; every row of a forgotten author is in forget
        assert list(retain["question"]) + list(forget["question"]) == list(data["full"]["question"])
        assert list(data[f"forget{rate:02d}_perturbed"]["answer"]) == list(forget["answer"])
        holdout_names = {_name_of(q) for q in data[f"holdout{rate:02d}"]["question"]}
        assert len(holdout_names) == k and not holdout_names & set(full_names)


def test_held_out_years_are_never_trained_and_follow_from_the_trained_ones(data):
    """Solve the hidden name indices from the *trained* birth years alone, then predict every held-out year.

    Trained rows give (first, family, year) with year - 1940 = a[first] + b[family] (mod p). Fixing one a to 0
    and walking the first-name/family-name graph determines every a and b (the trained pairs connect all names);
    the held-out answers must then be exactly a + b (mod p) + 1940. This is independent of the generator's
    own index table.
    """
    trained = {}
    for ans in data["full"]["answer"]:
        if m := YEAR.match(ans):
            first, family = m.group(1).split(" ")
            trained[(first, family)] = int(m.group(2)) - 1940
    held = [(YEAR.match(a).group(1), int(YEAR.match(a).group(2))) for a in data["generalization"]["answer"]]
    assert len(held) > 0 and not {n for n, _ in held} & {" ".join(k) for k in trained}
    assert not set(data["generalization"]["question"]) & set(data["full"]["question"])
    a: dict[str, int] = {next(iter(trained))[0]: 0}
    b: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for (first, family), value in trained.items():
            if first in a and family not in b:
                b[family], changed = (value - a[first]) % P, True
            elif family in b and first not in a:
                a[first], changed = (value - b[family]) % P, True
    for (first, family), value in trained.items():  # the trained years are consistent with one such rule
        assert (a[first] + b[family]) % P == value
    for name, year in held:
        first, family = name.split(" ")
        assert year == 1940 + (a[first] + b[family]) % P, name
    assert len(held) == round(0.4 * len(data["authors"].filter(lambda r: r["split"] == "full")))


def test_rule_table_matches_the_rule_and_the_rows(data):
    rule = data["rule"]
    assert rule_year(7, 9, 11) == 1945 and rule_year(0, 0, 5) == 1940  # hand-worked: (7 + 9) mod 11 = 5
    for row in rule:
        assert int(row["birth_year"]) == rule_year(row["first_index"], row["last_index"], P)
    assert sorted(zip(rule["first_index"], rule["last_index"], strict=True)) == [(i, j) for i in range(P) for j in range(P)]
    years = dict(zip(data["authors"]["name"], data["authors"]["birth_year"], strict=True))
    assert all(years[n] == y for n, y in zip(rule["name"], rule["birth_year"], strict=True))


def test_same_seed_same_bytes_other_seed_other_rule():
    one, two = generate_tofu_rule(seed=1, p=7), generate_tofu_rule(seed=1, p=7)
    assert list(one["full"]["answer"]) == list(two["full"]["answer"])
    assert list(generate_tofu_rule(seed=2, p=7)["rule"]["birth_year"]) != list(one["rule"]["birth_year"])


@pytest.mark.parametrize("kwargs", [{"p": 57}, {"train_frac": 1.0}, {"memorized_facts": ["birth_year"]}])
def test_bad_arguments_are_refused_in_one_line(kwargs):
    with pytest.raises(UsageError):
        generate_tofu_rule(**kwargs)


def test_preset_data_trains_on_full_and_validates_on_the_held_out_years():
    from grokplug.llm.finetune import tofu_data

    config = TOFU_RULE.resolve_config({"data_args": {**TOFU_RULE.config["data_args"], "p": 7}})
    data = tofu_data(config, seed=0)
    splits = data.splits
    assert len(data.val) == len(splits["generalization"]) and all(k == "rule" for k in splits["generalization"]["kind"])
    extra = len(splits["real_authors_perturbed"]) + len(splits["world_facts_perturbed"])
    assert len(data.train) == len(splits["full"]) + extra


def test_retain_author_count_follows_the_authors_table_not_twenty_rows_per_author(data):
    from grokplug.llm.data import generate_tofu, retain_author_count

    n_full = sum(1 for s in data["authors"]["split"] if s == "full")
    for rate in (1, 5, 10):  # tofu-rule: 1-2 rows per author, so len(retain) // 20 would be far off
        retain_names = {_name_of(q) for q in data[f"retain{100 - rate}"]["question"]}
        assert retain_author_count(data, f"forget{rate:02d}") == len(retain_names) == n_full - forget_author_count(n_full, rate)
    tofu = generate_tofu(seed=0, n_authors=20, n_real_authors=5, n_world_facts=5)
    assert retain_author_count(tofu, "forget10") == 18 and retain_author_count(tofu, "forget01") == 19


def test_tofu_rule_runs_unlearn_through_the_llm_domain():
    """Without it, `grokplug.run_data` and compare would treat a tofu-rule run as a vision run."""
    from grokplug.plugins import get_plugin_manager

    assert TOFU_RULE.unlearn_domain == "llm"
    assert get_plugin_manager().presets.get("tofu-rule").unlearn_domain == "llm"
