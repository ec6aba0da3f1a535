"""The collateral-damage verdict is read only at matched forgetting (issue 17).

Cells are built by hand, so every number below is worked out on paper: a start that never reached the
target has no damage to compare, whatever its final retain drop says.
"""

from __future__ import annotations

import pytest

from grokplug.compare._aggregate import build_aggregates, build_pairs, describe_target
from grokplug.compare._report import render_markdown, summary_lines
from grokplug.demo import print_comparison

PRIMARY = "frac:0.5"


def _cell(start: str, seed: int, *, at_target_drop: float | None, final_drop: float, iterative: bool = True,
          strength: float | None = None) -> dict:
    """One ok cell; ``at_target_drop=None``: the start never reached the primary target."""
    start_metrics = {"forget_acc": 1.0, "retain_acc": 0.9}
    reached = at_target_drop is not None
    at_target = None if not reached else {"forget_acc": 0.4, "retain_acc": 0.9 - at_target_drop,
                                          "retain_drop": at_target_drop, **({"step": 3} if iterative else {"strength": strength})}
    row = {"threshold": 0.5, "steps": (3 if reached else None) if iterative else None, "reached": reached,
           "met_at_start": False, "censored": iterative and not reached, "forget_acc": None, "retain_acc": None}
    sweep = None if iterative else {"strength_param": "selection_weighting", "strengths": [50.0, 5.0, 1.0],
                                    "target": PRIMARY, "points": [], "strength_to_target": strength if reached else None}
    return {
        "key": f"m__{start}__seed{seed}", "method": "m", "start": start, "seed": seed, "forget_rate": 0.5,
        "status": "ok", "iterative": iterative, "total_steps": 20 if iterative else 0,
        "split": {"forget_sha256": f"f{seed}", "retain_sha256": f"r{seed}"},
        "start_metrics": start_metrics,
        # the final forget acc of a start that never reached the target stays at 1.0: it forgot nothing
        "final": {"forget_acc": 0.4 if reached else 1.0, "retain_acc": 0.9 - final_drop, "retain_drop": final_drop},
        "at_target": at_target, "targets": {PRIMARY: row},
        "flags": ([] if reached else [f"never_reached:{PRIMARY}"]) if iterative else ["one_shot"], "trail": [],
        "sweep": sweep,
    }


def _results(cells: list[dict], seeds: list[int], *, iterative: bool = True) -> dict:
    config = {"methods": ["m"], "seeds": seeds, "forget_rates": [0.5], "targets": [PRIMARY], "primary": PRIMARY,
              "n_boot": 2000, "bootstrap_seed": 0, "ci_level": 0.95, "metrics": ["forget_acc", "retain_acc", "retain_drop"],
              "profile": "offline", "strengths": {} if iterative else {"m": [50.0, 5.0, 1.0]}}
    results = {"run": {"preset": "digits", "path": "/r", "label": "grokking", "pre": {"step": 1}, "grok": {"step": 9}},
               "config": config, "targets": [describe_target(PRIMARY, PRIMARY)], "cells": cells, "flags": []}
    results["aggregates"] = build_aggregates(cells, config)
    results["pairs"] = build_pairs(cells, config)
    results["summary"] = summary_lines(results)
    return results


@pytest.mark.parametrize("iterative", [True, False])
def test_a_start_that_did_not_forget_gives_no_damage_verdict(iterative, capsys):
    # the case: θ_grok forgot nothing, so its final retain drop (0.00) looks far smaller than θ_pre's (0.60)
    cells = [_cell("pre", s, at_target_drop=0.3, final_drop=0.6, iterative=iterative, strength=5.0) for s in (0, 1)]
    cells += [_cell("grok", s, at_target_drop=None, final_drop=0.0, iterative=iterative) for s in (0, 1)]
    results = _results(cells, [0, 1], iterative=iterative)
    (pair,) = results["pairs"]
    assert pair["collateral_verdict"] == "not comparable: θ_grok did not reach the target"
    assert pair["collateral"]["seeds_reached"] == {"pre": [0, 1], "grok": []}
    assert pair["collateral"]["seeds_compared"] == []
    assert pair["metrics"]["at_target"] == {}  # nothing was compared at matched forgetting
    line = next(x for x in results["summary"] if x.startswith("digits, 50% forget, m"))
    assert "not comparable: θ_grok did not reach the target" in line and "less collateral damage" not in line
    md = render_markdown(results)
    assert "/ not comparable: θ_grok did not reach the target |" in md
    print_comparison("digits", results)
    demo = capsys.readouterr().out.splitlines()[-1]
    assert "not comparable: θ_grok did not reach the target" in demo and "grok_less_damage" not in demo
    if not iterative:  # the one-shot summary names the swept strengths and where each start reached the target
        assert "(swept 50, 5, 1)" in line and "θ_pre 5, 5; θ_grok never, never" in line
        assert "one-shot; strength never, never" in md and "one-shot; strength 5, 5" in md
        assert demo.split()[2:4] == ["5,5", "never,never"]


def test_the_other_start_and_both_are_named():
    cells = [_cell("pre", 0, at_target_drop=None, final_drop=0.0), _cell("grok", 0, at_target_drop=0.1, final_drop=0.5)]
    assert _results(cells, [0])["pairs"][0]["collateral_verdict"] == "not comparable: θ_pre did not reach the target"
    cells = [_cell("pre", 0, at_target_drop=None, final_drop=0.0), _cell("grok", 0, at_target_drop=None, final_drop=0.5)]
    assert (_results(cells, [0])["pairs"][0]["collateral_verdict"]
            == "not comparable: θ_pre and θ_grok did not reach the target")
    # each reached it, but never in the same seed: still no pair at matched forgetting
    cells = [_cell("pre", 0, at_target_drop=0.2, final_drop=0.2), _cell("grok", 0, at_target_drop=None, final_drop=0.0),
             _cell("pre", 1, at_target_drop=None, final_drop=0.0), _cell("grok", 1, at_target_drop=0.1, final_drop=0.1)]
    assert (_results(cells, [0, 1])["pairs"][0]["collateral_verdict"]
            == "not comparable: θ_pre and θ_grok never reached the target in the same seed")


@pytest.mark.parametrize("iterative", [True, False])
def test_both_starts_forget_gives_a_damage_verdict_at_the_target_not_after_the_budget(iterative):
    # at the target θ_grok loses less retain accuracy (diffs 0.20, 0.25); after the full budget the
    # opposite holds (diffs −0.30, −0.30): only the at-target comparison may decide
    pre = [_cell("pre", s, at_target_drop=d, final_drop=0.1, iterative=iterative, strength=5.0) for s, d in ((0, 0.30), (1, 0.40))]
    grok = [_cell("grok", s, at_target_drop=d, final_drop=0.4, iterative=iterative, strength=1.0) for s, d in ((0, 0.10), (1, 0.15))]
    results = _results(pre + grok, [0, 1], iterative=iterative)
    (pair,) = results["pairs"]
    diff = pair["metrics"]["at_target"]["retain_drop"]
    assert diff["values"] == pytest.approx([0.20, 0.25]) and diff["mean"] == pytest.approx(0.225)
    # two paired values: resampled means are 0.20, 0.225 or 0.25, so the 95 % CI is [0.20, 0.25], above 0
    assert (diff["ci_low"], diff["ci_high"]) == (pytest.approx(0.20), pytest.approx(0.25))
    assert pair["metrics"]["final"]["retain_drop"]["mean"] == pytest.approx(-0.30)
    assert pair["collateral_verdict"] == "grok_less_damage"
    assert pair["collateral"]["seeds_compared"] == [0, 1]
    line = next(x for x in results["summary"] if x.startswith("digits, 50% forget, m"))
    assert "θ_grok forgets with less collateral damage" in line and "seeds where both" not in line
    if not iterative:
        assert pair["collateral"]["strength_to_target"] == {"pre": [5.0, 5.0], "grok": [1.0, 1.0]}


def test_seeds_where_one_start_missed_the_target_are_left_out_of_the_damage_verdict():
    # seed 1: θ_grok never reached the target, so only seed 0 is compared (θ_pre does less damage there)
    cells = [_cell("pre", 0, at_target_drop=0.1, final_drop=0.1), _cell("grok", 0, at_target_drop=0.3, final_drop=0.3),
             _cell("pre", 1, at_target_drop=0.5, final_drop=0.5), _cell("grok", 1, at_target_drop=None, final_drop=0.0)]
    results = _results(cells, [0, 1])
    (pair,) = results["pairs"]
    assert pair["metrics"]["at_target"]["retain_drop"]["values"] == pytest.approx([-0.2])
    assert pair["collateral_verdict"] == "pre_less_damage" and pair["collateral"]["seeds_compared"] == [0]
    assert "(over the 1 of 2 seeds where both starts reached the target)" in results["summary"][0]
