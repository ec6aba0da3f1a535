"""grokplug.compare / `grokplug compare`: the matrix end to end, pairing, flags, outputs and the cache."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import grokplug
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug._unlearning_method import UnlearningMethod
from grokplug.cli import main
from grokplug.errors import DivergedError, UsageError

PRIMARY = "frac:0.5"


def _weights(run):
    return {p: sha256_file(grokplug.request_checkpoint(run, p).path) for p in ("pre", "grok")}


def _check_cell_against_its_trail(cell):
    """Steps, flags and at-target metrics must be exactly what the recorded trail says."""
    trail = cell["trail"]
    assert [p[0] for p in trail] == list(range(cell["total_steps"] + 1))  # every update was evaluated
    assert trail[0][1] == pytest.approx(cell["start_metrics"]["forget_acc"])
    for spec, row in cell["targets"].items():
        hit = next((p for p in trail if p[1] <= row["threshold"]), None)
        assert row["steps"] == (None if hit is None else hit[0])
        assert row["met_at_start"] == (hit is not None and hit[0] == 0)
        assert (f"met_at_start:{spec}" in cell["flags"]) == row["met_at_start"]
        assert (f"never_reached:{spec}" in cell["flags"]) == (hit is None)
    primary = cell["targets"][PRIMARY]
    assert primary["threshold"] == pytest.approx(0.5 * cell["start_metrics"]["forget_acc"])
    if primary["reached"]:
        at = cell["at_target"]
        assert at["step"] == primary["steps"] and at["forget_acc"] == pytest.approx(primary["forget_acc"])
        assert at["retain_drop"] == pytest.approx(cell["start_metrics"]["retain_acc"] - at["retain_acc"])
    else:
        assert cell["at_target"] is None


def _check_one_shot_sweep(cell):
    """The sweep ran weakest first, stopped at the first strength reaching the primary target, and
    ``at_target`` is that point's result (drops against the cell's own start)."""
    from grokplug.vision.methods_salun_scrub_ssd import SSD

    sweep = cell["sweep"]
    assert sweep["strength_param"] == "selection_weighting" and sweep["strengths"] == list(SSD.strength_sweep)
    ran = [p["strength"] for p in sweep["points"]]
    assert ran == sweep["strengths"][:len(ran)]
    threshold = 0.5 * cell["start_metrics"]["forget_acc"]
    for point in sweep["points"]:
        assert point["target_forget_acc"] == pytest.approx(threshold)
        assert point["reached"] == (point["forget_acc"] <= threshold)
    assert not any(p["reached"] for p in sweep["points"][:-1])  # nothing weaker reached it
    if sweep["strength_to_target"] is None:
        assert ran == sweep["strengths"] and cell["at_target"] is None
    else:
        last = sweep["points"][-1]
        assert last["reached"] and last["strength"] == sweep["strength_to_target"] == cell["at_target"]["strength"]
        assert cell["at_target"]["forget_acc"] == last["forget_acc"] <= threshold
        assert cell["at_target"]["retain_drop"] == pytest.approx(cell["start_metrics"]["retain_acc"] - last["retain_acc"])


def test_compare_end_to_end_pairing_flags_outputs_and_reuse(digits_run_dir, tmp_path):
    before = _weights(digits_run_dir)
    out = tmp_path / "cmp"
    res = grokplug.compare(digits_run_dir, ["ga", "ssd"], seeds=2, forget_rates=[0.15], out=out,
                           n_boot=500, progress=False)
    assert (res.n_computed, res.n_reused) == (8, 0)
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "results.md", "cells"}
    assert len(list((out / "cells").glob("*.json"))) == 8
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "grokplug.compare/1"
    assert {"run", "config", "targets", "cells", "aggregates", "pairs", "flags", "summary"} <= set(data)
    assert data["config"]["seeds"] == [0, 1] and data["config"]["primary"] == PRIMARY
    assert data["run"]["pre"]["sha256"] == before["pre"] and data["run"]["grok"]["sha256"] == before["grok"]
    assert {t["spec"]: t["symmetric"] for t in data["targets"]}["test"] is False

    cells = {(c["method"], c["start"], c["seed"]): c for c in data["cells"]}
    for (method, start, seed), cell in cells.items():
        other = cells[(method, "grok" if start == "pre" else "pre", seed)]
        assert cell["split"]["forget_sha256"] == other["split"]["forget_sha256"]  # same forget set in the pair
        assert cell["start_sha256"] == before[start]
        if method == "ga":
            assert cell["iterative"] and cell["status"] == "ok"
            _check_cell_against_its_trail(cell)
        else:  # one-shot SSD: no steps, said so; its strength sweep gives the damage at matched forgetting
            assert not cell["iterative"] and cell["flags"] == ["one_shot"] and cell["targets"][PRIMARY]["steps"] is None
            _check_one_shot_sweep(cell)
    # different seeds draw different forget sets
    assert cells[("ga", "pre", 0)]["split"]["forget_sha256"] != cells[("ga", "pre", 1)]["split"]["forget_sha256"]
    flagged = {(f["cell"], f["target"], f["flag"]) for f in data["flags"]}
    for c in data["cells"]:
        for flag in c["flags"]:
            kind, _, target = flag.partition(":")
            assert (c["key"], target or None, kind) in flagged

    # aggregates and pairs are the plain statistics of the cells
    agg = {(a["method"], a["start"]): a for a in data["aggregates"]}
    for start in ("pre", "grok"):
        steps = [cells[("ga", start, s)]["targets"][PRIMARY] for s in (0, 1)]
        values = [r["steps"] if r["reached"] else cells[("ga", start, s)]["total_steps"] for s, r in zip((0, 1), steps, strict=True)]
        got = agg[("ga", start)]["steps"][PRIMARY]
        assert got["values"] == values and got["mean"] == pytest.approx(np.mean(values))
        assert got["std"] == pytest.approx(np.std(values, ddof=1))
        drops = [cells[("ga", start, s)]["final"]["retain_drop"] for s in (0, 1)]
        assert agg[("ga", start)]["metrics"]["final"]["retain_drop"]["mean"] == pytest.approx(np.mean(drops))
    assert agg[("ssd", "pre")]["steps"] == {}
    pair = next(p for p in data["pairs"] if p["method"] == "ga")
    assert pair["same_split"] and pair["split_sha256"]["0"] == cells[("ga", "pre", 0)]["split"]["forget_sha256"]
    diff = pair["steps"][PRIMARY]["diff"]
    assert diff["values"] == [a - b for a, b in zip(agg[("ga", "pre")]["steps"][PRIMARY]["values"],
                                                   agg[("ga", "grok")]["steps"][PRIMARY]["values"], strict=True)]
    assert diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    ratio = pair["steps"][PRIMARY]["ratio"]
    if ratio["value"] is not None:
        assert ratio["value"] == pytest.approx(agg[("ga", "pre")]["steps"][PRIMARY]["mean"] / agg[("ga", "grok")]["steps"][PRIMARY]["mean"])
    # a one-shot sweep point is what a plain `unlearn` at that strength gives, on the same forget set
    ssd_cell = cells[("ssd", "grok", 0)]
    point = ssd_cell["sweep"]["points"][-1]
    alone = grokplug.unlearn("ssd", source=digits_run_dir, start="grok", seed=0, forget_rate=0.15, target="none",
                             hparams={"selection_weighting": point["strength"]}, profile="auto")
    assert alone.metrics["forget_acc"] == pytest.approx(point["forget_acc"])
    assert alone.metrics["retain_acc"] == pytest.approx(point["retain_acc"])
    assert alone.metrics["split"]["forget_sha256"] == ssd_cell["split"]["forget_sha256"]
    # the damage verdict rests only on seeds where both starts reached the target
    for pair in data["pairs"]:
        reached = {s: [c for c in (0, 1) if cells[(pair["method"], s, c)]["at_target"]] for s in ("pre", "grok")}
        assert pair["collateral"]["seeds_reached"] == reached
        missing = [f"θ_{s}" for s in ("pre", "grok") if not reached[s]]
        if missing:
            assert pair["collateral_verdict"] == f"not comparable: {' and '.join(missing)} did not reach the target"
        else:
            both = [c for c in (0, 1) if c in reached["pre"] and c in reached["grok"]]
            assert pair["metrics"]["at_target"]["retain_drop"]["values"] == pytest.approx(
                [cells[(pair["method"], "pre", c)]["at_target"]["retain_drop"]
                 - cells[(pair["method"], "grok", c)]["at_target"]["retain_drop"] for c in both])
    assert any(line.startswith("digits, 15% forget, ga:") for line in data["summary"])
    assert "one-shot" in next(line for line in data["summary"] if ", ssd" in line)

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and {"method", "start", f"steps[{PRIMARY}]_mean", "at_target_retain_drop_mean"} <= set(rows[0])
    assert "θ_pre vs θ_grok" in (out / "results.md").read_text()

    # resumable: everything reused, same numbers
    again = grokplug.compare(digits_run_dir, ["ga", "ssd"], seeds=2, forget_rates=[0.15], out=out, n_boot=500, progress=False)
    assert (again.n_computed, again.n_reused) == (0, 8)
    assert again.results["aggregates"] == data["aggregates"] and again.results["pairs"] == data["pairs"]
    # changed hyperparameters: only that method's cells are recomputed; a damaged cell file is recomputed too
    (out / "cells" / "ssd__pre__seed0__rate0.15.json").write_text("{not json")
    changed = grokplug.compare(digits_run_dir, ["ga", "ssd"], seeds=2, forget_rates=[0.15], out=out, n_boot=500,
                               progress=False, hparams={"ga": {"lr": 2e-3}})
    assert (changed.n_computed, changed.n_reused) == (5, 3)
    assert json.loads((out / "cells" / "ga__pre__seed0__rate0.15.json").read_text())["hparams"]["lr"] == 2e-3
    # the source run was only read
    assert _weights(digits_run_dir) == before and RunDir(digits_run_dir).status == "finished"


def test_compare_cli_on_modular(modular_run_dir, tmp_path, capsys):
    out = tmp_path / "m"
    capsys.readouterr()
    assert main(["compare", str(modular_run_dir), "--methods", "rl", "--seeds", "1", "--forget-rates", "0.15",
                 "--targets", "frac:0.5,test", "--n-boot", "200", "--out", str(out), "--no-progress", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n_computed"], info["n_reused"]) == (2, 0) and info["summary"][0].startswith("modular, 15% forget, rl")
    data = json.loads((out / "results.json").read_text())
    pre, grok = sorted(data["cells"], key=lambda c: c["start"] != "pre")
    assert pre["split"]["forget_sha256"] == grok["split"]["forget_sha256"]
    for cell in (pre, grok):
        _check_cell_against_its_trail(cell)
    # the `test` target is each start's own test accuracy: not the same bar for θ_pre and θ_grok
    assert pre["targets"]["test"]["threshold"] == pytest.approx(pre["start_metrics"]["test_acc"])
    assert grok["targets"]["test"]["threshold"] > pre["targets"]["test"]["threshold"]
    assert main(["compare", str(modular_run_dir), "--methods", "rl", "--seeds", "1", "--forget-rates", "0.15",
                 "--targets", "frac:0.5,test", "--n-boot", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cells: 0 computed, 2 reused" in text and "| 0.15 | rl | θ_pre |" in text


class _Explodes(UnlearningMethod):
    name = "explodes"
    defaults = {"epochs": 1}

    def run(self, model, data, epochs):
        raise DivergedError("the model's outputs became NaN or infinite during unlearning")


def test_a_diverged_cell_is_recorded_flagged_and_excluded(digits_run_dir, tmp_path, pm):
    pm.register(type("P", (), {"grokplug_register_methods": grokplug.hookimpl(
        lambda self, register: register("explodes", _Explodes()))})(), name="explodes-plugin")
    res = grokplug.compare(digits_run_dir, ["explodes"], seeds=1, forget_rates=[0.3], out=tmp_path / "x",
                           n_boot=100, progress=False)
    assert [c["status"] for c in res.results["cells"]] == ["diverged", "diverged"]
    assert all(c["flags"] == ["diverged"] for c in res.results["cells"])
    assert res.results["aggregates"][0]["n_diverged"] == 1 and res.results["pairs"][0]["seeds"] == []
    assert "diverged" in res.summary[0]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--methods", "nope"], "unknown method 'nope'"),
        (["--forget-rates", "0.15,1.5"], "strictly between 0 and 1"),
        (["--forget-rates", "0"], "strictly between 0 and 1"),
        (["--seeds", "two"], "--seeds expects"),
        (["--targets", "sometimes"], "unknown target 'sometimes'"),
        (["--targets", "none"], "'none' is not a target level"),
        (["--set", "epochs=3"], "METHOD.NAME=VALUE"),
        (["--set", "ga.bogus=3"], "has no hyperparameter(s) bogus"),
        (["--methods", "ga", "--set", "rl.epochs=3"], "not among the compared methods"),
        (["--methods", "npo"], "is for the 'llm' domain"),
    ],
)
def test_compare_cli_misuse(digits_run_dir, tmp_path, argv, needle, capsys):
    assert main(["compare", str(digits_run_dir), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grokplug: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "o").exists()  # refused before any cell ran


def test_compare_refuses_a_missing_run(tmp_path):
    with pytest.raises(UsageError, match="no grokplug run directory"):
        grokplug.compare(tmp_path / "missing", ["ga"])


def test_grokplug_compare_is_callable_whichever_import_came_first():
    import subprocess
    import sys

    code = ("import grokplug.compare._matrix, grokplug; from grokplug import compare; "
            "assert callable(grokplug.compare) and callable(compare); "
            "import grokplug.compare as m; assert m.CompareResult is grokplug.CompareResult; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"


def test_plots_and_analysis_are_wired_to_their_modules(digits_run_dir, tmp_path, monkeypatch):
    import grokplug.analysis
    import grokplug.compare._plots

    seen = {}

    def fake_plots(results, run, out_dir):
        seen["plots"] = (results["schema"], len(results["cells"]), run, out_dir)
        path = out_dir / "fig.png"
        path.write_bytes(b"png")
        return [path]

    def fake_analysis(run, **kwargs):
        seen["analysis"] = (run, kwargs)
        return {"ratios_pre_over_grok": {"x": 2.0}}

    monkeypatch.setattr(grokplug.compare._plots, "plot_compare", fake_plots)
    monkeypatch.setattr(grokplug.analysis, "analyse_run", fake_analysis)
    res = grokplug.compare(digits_run_dir, ["ssd"], seeds=[3], forget_rates=[0.2], out=tmp_path / "p", n_boot=50,
                           progress=False, plots=True, analysis=True)
    assert seen["plots"] == ("grokplug.compare/1", 2, digits_run_dir, tmp_path / "p")
    assert seen["analysis"] == (digits_run_dir, {"forget_rate": 0.2, "seed": 3, "fallback": None})
    saved = json.loads((tmp_path / "p" / "results.json").read_text())
    assert saved["plots"] == ["fig.png"] and saved["analysis"] == {"ratios_pre_over_grok": {"x": 2.0}}
    assert res.plots == [tmp_path / "p" / "fig.png"]


@pytest.mark.slow
def test_retrain_target_is_computed_once_per_split_and_cached(modular_run_dir, tmp_path):
    kwargs = {"seeds": 1, "forget_rates": [0.15], "targets": ["frac:0.5", "retrain"], "out": tmp_path / "r",
              "n_boot": 50, "progress": False}
    res = grokplug.compare(modular_run_dir, ["rl"], **kwargs)
    cached = json.loads((tmp_path / "r" / "cells" / "retrain__seed0__rate0.15.json").read_text())
    for cell in res.results["cells"]:  # the same reference for both starts: one retrained model per split
        assert cell["inputs"]["retrain"] == cached["metrics"]
        assert cell["targets"]["retrain"]["threshold"] == cached["metrics"]["forget_acc"]
    again = grokplug.compare(modular_run_dir, ["rl"], **kwargs)
    assert (again.n_computed, again.n_reused) == (0, 2)


def test_grokplug_compare_stays_the_callable_module_whatever_was_imported_first():
    # the lazy attribute once bound the function, so `grokplug.compare._plots` failed after a plain
    # `grokplug.compare(...)` call: an order-dependent failure of the test above
    import subprocess
    import sys

    code = ("import grokplug; first = grokplug.compare; import grokplug.compare._plots as p; "
            "assert first is grokplug.compare and grokplug.compare._plots is p and callable(first), type(first)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
