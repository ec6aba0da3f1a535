"""``grokplug demo``: the claim verdict lines (hand-worked cells) and the paper suite end to end (shortened)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import grokplug.demo as demo
from grokplug._claims import claim_lines, damage_line, efficiency_line, headline, seed_variance_line
from grokplug._rundir import RunDir
from grokplug._train import train_preset
from grokplug.cli import main
from grokplug.compare._aggregate import build_aggregates, build_pairs

PRIMARY = "frac:0.5"


def _cell(method: str, start: str, seed: int, steps: int | None, *, test_acc: float = 0.5,
          at_target_drop: float = 0.1, iterative: bool = True) -> dict[str, Any]:
    """One ok cell; ``steps=None``: never reached the primary target within a budget of 20 updates."""
    reached = steps is not None
    row = {"threshold": 0.5, "steps": steps, "reached": reached, "met_at_start": False, "censored": not reached,
           "forget_acc": None, "retain_acc": 0.8 if reached else None}
    return {
        "key": f"{method}__{start}__seed{seed}", "method": method, "start": start, "seed": seed, "forget_rate": 0.5,
        "status": "ok", "iterative": iterative, "total_steps": 20 if iterative else 0,
        "split": {"forget_sha256": f"f{seed}", "retain_sha256": f"r{seed}"},
        "start_metrics": {"forget_acc": 1.0, "retain_acc": 0.9},
        "final": {"forget_acc": 0.4 if reached else 1.0, "retain_acc": 0.8, "test_acc": test_acc},
        "at_target": {"forget_acc": 0.4, "retain_acc": 0.9 - at_target_drop, "retain_drop": at_target_drop} if reached else None,
        "targets": {PRIMARY: row}, "flags": [], "trail": [], "sweep": None,
    }


def _results(cells: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    config = {"methods": methods, "seeds": [0, 1, 2], "forget_rates": [0.5], "targets": [PRIMARY], "primary": PRIMARY,
              "n_boot": 2000, "bootstrap_seed": 0, "ci_level": 0.95,
              "metrics": ["forget_acc", "retain_acc", "test_acc", "retain_drop"], "profile": "offline", "strengths": {}}
    results = {"config": config, "cells": cells}
    results["aggregates"] = build_aggregates(cells, config)
    results["pairs"] = build_pairs(cells, config)
    return results


def _hand_results() -> dict[str, Any]:
    """Three methods over seeds 0-2, worked out by hand:

    * ``fast``: θ_pre 10, 12, 14 steps, θ_grok 2, 3, 4 → every resampled ratio is > 1: θ_grok faster;
      std pre = std grok = 2 (sample std of 10,12,14 and 2,3,4 is 2 and 1): θ_grok lower (1 < 2);
      retain drop at target 0.3 (pre) vs 0.1 (grok) in every seed → θ_grok less damage.
    * ``slow``: θ_pre 2, 2, 2, θ_grok 6, 8, 10 → θ_pre faster; std 0 vs 2: θ_pre lower; drops 0.1 vs 0.3 → θ_pre less damage.
    * ``never``: θ_pre 5, 5, 5, θ_grok never (counted at its budget 20) → ratio ≤ 0.25, an upper bound
      below 1: θ_pre faster; damage not comparable; std pre (5, 5, 5) = 0, grok (20 ×3) = 0: equal.
    """
    cells = []
    for seed, (pre, grok) in enumerate([(10, 2), (12, 3), (14, 4)]):
        cells += [_cell("fast", "pre", seed, pre, at_target_drop=0.3), _cell("fast", "grok", seed, grok, at_target_drop=0.1)]
    for seed, grok in enumerate([6, 8, 10]):
        cells += [_cell("slow", "pre", seed, 2, at_target_drop=0.1), _cell("slow", "grok", seed, grok, at_target_drop=0.3)]
    for seed in range(3):
        cells += [_cell("never", "pre", seed, 5), _cell("never", "grok", seed, None)]
    return _results(cells, ["fast", "slow", "never"])


def test_headline_words() -> None:
    assert [headline(2, 0), headline(0, 1), headline(1, 1), headline(0, 0)] == ["holds", "does not hold", "mixed", "not shown"]


def test_claim_lines_count_hand_worked_pairs() -> None:
    results = _hand_results()
    by_method = {p["method"]: p for p in results["pairs"]}
    assert by_method["fast"]["steps"][PRIMARY]["verdict"] == "grok_faster"
    assert by_method["slow"]["steps"][PRIMARY]["verdict"] == "pre_faster"

    eff = efficiency_line(results)
    assert eff.startswith("efficiency") and "mixed" in eff and "of 3 iterative" in eff
    assert "θ_grok faster in 1, θ_pre faster in 2 (" in eff and "inconclusive" not in eff

    dmg = damage_line(results)
    assert "mixed" in dmg and "θ_grok less damage in 1" in dmg and "θ_pre less damage in 1" in dmg
    assert "not comparable (a start never reached it) in 1" in dmg and "no clear difference" not in dmg

    var = seed_variance_line(results)
    assert "mixed" in var and "θ_grok lower in 1" in var and "θ_pre lower in 1" in var and "equal in 1" in var
    assert claim_lines(results) == [eff, dmg, var]


def test_claim_lines_agree_when_every_pair_favours_grok() -> None:
    cells = []
    for seed, (pre, grok) in enumerate([(10, 2), (13, 3), (16, 3)]):
        cells += [_cell("a", "pre", seed, pre, at_target_drop=0.4), _cell("a", "grok", seed, grok, at_target_drop=0.1)]
    eff, dmg, var = claim_lines(_results(cells, ["a"]))
    assert "holds — of 1 iterative" in eff and "θ_grok faster in 1" in eff and "θ_pre faster" not in eff
    assert "holds — of 1 pairs" in dmg and "θ_grok less damage in 1" in dmg
    assert "holds — of 1 pairs: θ_grok lower in 1" in var  # std 3 (pre) vs 0.577 (grok)


def test_seed_variance_of_a_one_shot_method_reads_final_test_accuracy() -> None:
    # one-shot (no steps): final test acc θ_pre 0.5, 0.5, 0.5 (std 0) vs θ_grok 0.4, 0.5, 0.6 (std 0.1) → θ_pre lower
    cells = []
    for seed, grok_test in enumerate([0.4, 0.5, 0.6]):
        cells += [_cell("os", "pre", seed, None, test_acc=0.5, iterative=False),
                  _cell("os", "grok", seed, None, test_acc=grok_test, iterative=False)]
    line = seed_variance_line(_results(cells, ["os"]))
    assert "does not hold — of 1 pairs: θ_pre lower in 1" in line, line
    assert "of 0 iterative" in efficiency_line(_results(cells, ["os"]))  # no steps for a one-shot method


def test_demo_suite_choice_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--suite", "nope"]) == 2  # a usage error: one line, no traceback
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="unknown demo suite"):
        demo.run_demo(Path("unused"), suite="nope")


def test_plateau_suite_is_reachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    called: list[str] = []
    monkeypatch.setattr(demo, "_run_plateau", lambda out, progress: called.append("plateau") or 0)
    monkeypatch.setattr(demo, "_run_paper", lambda out, progress: called.append("paper") or 0)
    assert main(["demo", "--out", str(tmp_path), "--suite", "plateau", "--no-progress"]) == 0
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    assert called == ["plateau", "paper"]  # paper is the default


def test_paper_suite_end_to_end_shortened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    """The real paper suite on digits-noisy cut to 1 500 steps, 2 methods, 2 seeds, one rate (the full
    demo is what `make demo` runs): the run has no θ_grok, the demo says so and serves the final
    checkpoint; the verdict lines count the pairs results.json holds; a second call reuses everything."""
    def short_run(name: str, out: Path, *, seed: int = 0, progress: bool = True) -> tuple[RunDir, bool]:
        path = out / name
        if RunDir.exists(path):
            return RunDir(path), True
        train_preset(name, path, seed=seed, max_steps=1500, progress=False)
        return RunDir(path), False

    # the preset flushes denormals and the demo sets one thread, both process-wide: undone after the test
    # (hypothesis refuses to run with denormals flushed)
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: (torch.set_num_threads(threads), torch.set_flush_denormal(False)))
    monkeypatch.setattr(demo, "prepare_run", short_run)
    monkeypatch.setattr(demo, "PAPER_METHODS", ("ga", "ssd"))
    monkeypatch.setattr(demo, "PAPER_SEEDS", 2)
    monkeypatch.setattr(demo, "PAPER_RATES", (0.15,))
    assert demo.run_demo(tmp_path, progress=False) == 0
    out = capsys.readouterr().out
    run = RunDir(tmp_path / "digits-noisy")
    report = run.report()
    assert report.label != "grokking" and "has not grokked" in out  # 1 500 steps: peak at 300, no late rise
    assert f"θ_pre (early-stop rule): step {report.pre_step}," in out
    assert f"θ_grok: step {run.checkpoint_steps()[-1]}," in out  # the final checkpoint stands in

    results = json.loads((tmp_path / "digits-noisy-compare" / "results.json").read_text())
    assert results["run"]["pre"]["step"] == report.pre_step and results["config"]["seeds"] == [0, 1]
    assert results["config"]["pre_phase"] == "pre" and results["run"]["grok"]["phase"] == "final"
    verdicts = [line[2:] for line in out.splitlines() if line.startswith("- ")]
    assert [v.split(" (")[0] for v in verdicts] == ["efficiency", "damage", "seed variance"]
    assert "of 1 iterative method × rate pairs" in verdicts[0] and "of 2 pairs" in verdicts[1]
    assert verdicts == claim_lines(results)

    assert demo.run_demo(tmp_path, progress=False) == 0
    again = capsys.readouterr().out
    assert "(reused)" in again and "cells: 0 computed, 8 reused" in again  # 2 methods × 2 starts × 2 seeds
