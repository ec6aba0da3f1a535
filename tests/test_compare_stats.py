"""grokplug.compare statistics against hand-computed values, and steps-to-target read off a trail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grokplug.compare import bootstrap_ci, mean_std, paired_diff, steps_ratio, verdict
from grokplug.compare._stats import percentile_interval
from grokplug.compare._steps import target_rows


def test_mean_and_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3, "values": [1.0, 2.0, 3.0]}
    one = mean_std([4.0])
    assert one["mean"] == 4.0 and one["std"] is None  # no spread from one seed, not a fake 0
    assert mean_std([])["mean"] is None


def test_bootstrap_ci_converges_to_the_exact_resampling_distribution():
    """All 4⁴ = 256 resamples of [1, 2, 3, 10] are equally likely: enumerate them for the exact quantiles."""
    import itertools

    x = [1.0, 2.0, 3.0, 10.0]
    means = np.sort([sum(c) / 4 for c in itertools.product(x, repeat=4)])
    exact_low, exact_high = np.quantile(means, 0.025), np.quantile(means, 0.975)
    low, high = bootstrap_ci(x, n_boot=20_000, seed=42)
    assert low == pytest.approx(exact_low, abs=0.26) and high == pytest.approx(exact_high, abs=0.26)  # steps of 0.25
    assert bootstrap_ci(x, seed=42) == bootstrap_ci(x, seed=42)  # seeded: reproducible
    narrower = bootstrap_ci(x, level=0.5, n_boot=20_000, seed=42)
    assert low < narrower[0] < narrower[1] < high


def test_bootstrap_ci_hand_computed_cases():
    assert bootstrap_ci([0.7, 0.7, 0.7]) == (pytest.approx(0.7, abs=1e-12),) * 2  # a constant: the CI collapses onto it
    # two values {0, 10}: resampled means are 0, 5, 10 with probability 1/4, 1/2, 1/4, so the
    # 2.5th and 97.5th percentiles are exactly 0 and 10
    assert bootstrap_ci([0.0, 10.0], n_boot=10_000, seed=0) == (0.0, 10.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_paired_difference_keeps_the_pairing():
    d = paired_diff([5.0, 6.0, 9.0], [1.0, 2.0, 5.0])
    assert d["mean"] == 4.0 and d["values"] == [4.0, 4.0, 4.0]
    assert (d["ci_low"], d["ci_high"]) == (4.0, 4.0)  # unpaired resampling would give a wide CI here
    with pytest.raises(ValueError, match="differ in length"):
        paired_diff([1.0], [1.0, 2.0])


def test_steps_ratio_exact_and_censored():
    r = steps_ratio([2.0, 4.0], [1.0, 2.0])
    assert r["value"] == 2.0 and (r["ci_low"], r["ci_high"]) == (2.0, 2.0) and r["bound"] == "exact"
    assert verdict(r) == "grok_faster"
    lower = steps_ratio([20.0, 20.0], [5.0, 6.0], pre_censored=[True, False])
    assert lower["bound"] == "lower" and lower["n_censored_pre"] == 1 and "lower bound" in lower["note"]
    assert verdict(lower) == "grok_faster"  # a lower bound above 1 still says θ_grok is faster
    upper = steps_ratio([2.0, 3.0], [20.0, 20.0], grok_censored=[True, True])
    assert upper["bound"] == "upper" and verdict(upper) == "pre_faster"
    both = steps_ratio([20.0, 3.0], [20.0, 4.0], pre_censored=[True, False], grok_censored=[False, True])
    assert both["bound"] == "undefined" and verdict(both) == "undefined"
    # a lower bound below 1 cannot say θ_pre is faster
    assert verdict({"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "bound": "lower"}) == "inconclusive"
    assert verdict({"value": 1.0, "ci_low": 0.8, "ci_high": 1.3, "bound": "exact"}) == "inconclusive"


def test_steps_ratio_when_grok_meets_the_target_at_step_0():
    r = steps_ratio([3.0, 5.0], [0.0, 0.0])
    assert r["value"] is None and r["bound"] == "undefined" and "step 0" in r["note"]
    assert r["n_met_at_start_grok"] == 2
    # one seed at 0: resamples that pick it twice (1 in 4) have an infinite ratio: the CI is open above
    open_ci = steps_ratio([3.0, 3.0], [0.0, 5.0])
    assert open_ci["value"] == pytest.approx(1.2) and open_ci["ci_high"] is None and "unbounded" in open_ci["note"]


def test_percentile_interval_handles_inf_and_nan():
    low, high = percentile_interval(np.array([1.0, 1.0, np.inf, np.inf, np.nan]), level=0.5)
    assert low == 1.0 and math.isinf(high)


def test_steps_to_target_from_a_trail():
    trail = [[0, 1.0, 1.0], [1, 0.8, 0.9], [2, 0.4, 0.7], [3, 0.45, 0.6]]
    rows = target_rows(["frac:0.9", "frac:0.5", "frac:0.25", "test", "1.0"], trail,
                       {"forget_acc": 1.0, "test_acc": 0.85}, None, True, 0.45)
    assert rows["frac:0.9"]["steps"] == 1 and rows["frac:0.9"]["threshold"] == pytest.approx(0.9)
    assert rows["frac:0.5"]["steps"] == 2 and rows["frac:0.5"]["retain_acc"] == 0.7
    assert rows["frac:0.25"] | {} == {"threshold": 0.25, "steps": None, "reached": False, "met_at_start": False,
                                      "censored": True, "forget_acc": None, "retain_acc": None}
    assert rows["test"]["steps"] == 1  # 0.8 ≤ 0.85
    assert rows["1.0"]["steps"] == 0 and rows["1.0"]["met_at_start"]
    one_shot = target_rows(["frac:0.5"], [], {"forget_acc": 0.9, "test_acc": 0.5}, None, False, 0.3)
    assert one_shot["frac:0.5"]["steps"] is None and one_shot["frac:0.5"]["reached"]


def test_report_marks_a_censored_steps_difference():
    from grokplug.compare._report import _diff_text

    diff = {"mean": 6.0, "ci_low": 2.0, "ci_high": 9.0}
    assert _diff_text({"diff": diff, "ratio": {"bound": "exact"}}) == "+6.0 (+2.0 to +9.0)"
    assert _diff_text({"diff": diff, "ratio": {"bound": "lower"}}) == "≥ +6.0 (+2.0 to +9.0)"  # θ_pre censored
    assert _diff_text({"diff": diff, "ratio": {"bound": "upper"}}) == "≤ +6.0 (+2.0 to +9.0)"  # θ_grok censored
    assert _diff_text({"diff": diff, "ratio": {"bound": "undefined"}}).startswith("undefined")
