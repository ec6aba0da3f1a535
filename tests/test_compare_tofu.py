"""``grokplug compare`` on a TOFU-style run: the same matrix, statistics, outputs and figures as for vision."""

from __future__ import annotations

import csv
import json

import pytest

from grokplug.cli import main

ARGV = ["--methods", "npo,llm-graddiff", "--seeds", "2", "--fallback", "final", "--set", "npo.max_steps=3",
        "--set", "llm-graddiff.max_steps=3", "--n-boot", "200", "--no-progress", "--json"]


def test_compare_cli_on_a_tofu_run_writes_tables_and_figures(tofu_run_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", str(tofu_run_dir), *ARGV, "--out", str(out)]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_computed"] == 8 and info["n_reused"] == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["domain"] == "llm" and results["config"]["forget_rates"] == [0.1]
    assert results["config"]["targets"] == ["frac:0.9", "frac:0.75", "frac:0.5", "frac:0.25"]  # no test set: no `test`
    cells = {c["key"]: c for c in results["cells"]}
    assert len(cells) == 8 and all(c["status"] == "ok" and c["split"]["forget_split"] == "forget10" for c in cells.values())
    for c in cells.values():  # the TOFU metrics are the damage and forgetting measures
        assert {"forget_acc", "retain_acc", "gen_acc", "model_utility", "forget_Q_A_Prob"} <= set(c["final"])
        assert c["total_steps"] == 3 and [p[0] for p in c["trail"]] == [0, 1, 2, 3]
    for method in ("npo", "llm-graddiff"):
        for seed in (0, 1):
            pre, grok = cells[f"{method}__pre__seed{seed}__rate0.1"], cells[f"{method}__grok__seed{seed}__rate0.1"]
            assert pre["split"]["forget_sha256"] == grok["split"]["forget_sha256"]
            if pre["start_sha256"] == grok["start_sha256"]:  # a run that never grokked: θ_grok falls back to the same file
                assert pre["trail"] == grok["trail"]  # same start, same seed: the same run
    pairs = {p["method"]: p for p in results["pairs"]}
    assert set(pairs) == {"npo", "llm-graddiff"} and all(p["seeds"] == [0, 1] for p in pairs.values())
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and "final_model_utility_mean" in rows[0]
    md = (out / "results.md").read_text()
    assert "model utility" in md and "gen drop @target" in md
    again = main(argv)  # a rerun reuses every cell (input hashes match)
    assert again == 0 and json.loads(capsys.readouterr().out)["n_reused"] == 8
    from grokplug.compare._plots import plot_compare

    paths = plot_compare(results, tofu_run_dir, out, gap=False)  # Fig. 1b reruns unlearning: the slow test below
    assert [p.name for p in paths] == ["fig1a_training.png", "fig2_convergence.png", "fig_seed_spread.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


@pytest.mark.slow
def test_compare_cli_plots_on_a_tofu_run(tofu_run_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(tofu_run_dir), *ARGV, "--out", str(out), "--plots"]) == 0
    plots = json.loads(capsys.readouterr().out)["plots"]
    names = ("fig1a_training.png", "fig2_convergence.png", "fig_seed_spread.png", "fig1b_gap_npo.png")
    assert sorted(p.rsplit("/", 1)[-1] for p in plots) == sorted(names)
    assert all((out / name).stat().st_size > 10_000 for name in names)
