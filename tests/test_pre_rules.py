"""The two θ_pre rules (early-stop, matched-train) and the run's shape, on hand-built histories.

Every expected step below is worked out by hand in the comments: the smoother is a trailing median of
3 evals, crossings are held for k = 3 evals, early stopping has patience 10 and min_delta 1e-3.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

import grokplug
from grokplug._detect import detect_phases_builtin
from grokplug._online import OnlineDetector
from grokplug._rundir import RunDir
from grokplug.cli import main
from grokplug.errors import UsageError

from support_runs import run_scripted

STEPS = list(range(0, 4001, 100))  # 41 evals
# Fig. 1a in miniature: an early peak at 0.6, overfitting down to 0.4, then a late rise to 0.9.
PEAK_VAL = [0.1, 0.3, 0.6, 0.6, 0.55, 0.5, 0.45, 0.4] + [0.4] * 10 + [0.5, 0.6, 0.7, 0.8, 0.9] + [0.9] * 18
PEAK_TRAIN = [0.2, 0.5, 0.7, 0.8, 0.9] + [1.0] * 36


def history(val: list[float], train: list[float], loss: list[float] | None = None) -> list[dict[str, Any]]:
    out = [{"step": s, "train_acc": t, "val_acc": v} for s, t, v in zip(STEPS, train, val, strict=True)]
    for record, value in zip(out, loss or [], strict=False):
        record["val_loss"] = value
    return out


def test_peak_decline_grok_gets_both_rules_and_its_shape() -> None:
    rep = detect_phases_builtin(history(PEAK_VAL, PEAK_TRAIN))
    # smoothed val: 0.1 .2 .3 .6 .6 .55 .5 .45 .4 ... -> early stopping from the first eval has its best
    # at index 3 (step 300) and runs out of patience 10 evals later (step 1300)
    assert (rep.pre_step, rep.pre_val, rep.pre_rule) == (300, 0.6, "early-stopping")
    # smoothed train .2 .35 .5 .7 .8 .9 1 1 1: t_mem = 600 (first of 3 held at >= 0.99); v(t_mem) = 0.5;
    # early stopping from there keeps step 600 itself (raw val 0.45), which fits the training set
    assert rep.t_mem == 600 and (rep.pre_matched_step, rep.pre_matched_val) == (600, 0.45)
    assert rep.pre_matched_rule == "early-stopping"
    # v_max 0.9, G = 0.4: onset level 0.54 first held at 2000, gen level 0.86 at 2300 -> θ_grok 2300
    assert (rep.label, rep.t_onset, rep.t_gen, rep.grok_step, rep.grok_val) == ("grokking", 2000, 2300, 2300, 0.9)
    assert rep.shape == "peak-decline-grok"
    numbers = {k: round(v, 6) for k, v in rep.shape_numbers.items()}
    assert numbers == {
        "peak_val": 0.6, "peak_step": 300, "trough_val": 0.4, "trough_step": 800, "train_at_trough": 1.0,
        "final_val": 0.9, "final_step": 4000, "drop": 0.2, "rise_over_peak": 0.3,
    }
    assert rep.grok_step >= 3 * rep.pre_step  # the "≥ 3× apart" holds here: 2300 vs 300
    # θ_pre at step 300 did not fit the training set (raw train 0.8): the paper's rule does not ask it to
    assert history(PEAK_VAL, PEAK_TRAIN)[3]["train_acc"] < rep.params["tau_mem"]


def test_omnigrok_style_run_is_plateau_grok_and_early_stop_ships_an_early_model() -> None:
    val = [0.1] * 20 + [0.3, 0.6, 0.9] + [0.95] * 18
    rep = detect_phases_builtin(history(val, PEAK_TRAIN))
    # flat val: no improvement after step 0, so early stopping keeps step 0 (ties keep the earliest)
    assert (rep.label, rep.pre_step, rep.pre_matched_step) == ("grokking", 0, 600)
    assert rep.shape == "plateau-grok" and rep.shape_numbers["peak_val"] == 0.1
    assert rep.shape_numbers["trough_val"] == 0.1 and rep.shape_numbers["final_val"] == 0.95


def test_decline_without_recovery_is_peak_decline() -> None:
    val = [0.2, 0.5, 0.7, 0.7, 0.65, 0.6, 0.55, 0.5] + [0.5] * 33
    train = [0.3, 0.6, 0.9, 1.0] + [1.0] * 37
    rep = detect_phases_builtin(history(val, train))
    # smoothed val .2 .35 .5 .7 .7 .65 .6 .55 .5 ...: peak 0.7 at 300, trough 0.5 from 800, final 0.5
    assert rep.shape == "peak-decline" and rep.label == "memorization"
    assert (rep.shape_numbers["peak_step"], rep.shape_numbers["trough_step"]) == (300, 800)
    assert rep.pre_step == 300 and rep.pre_matched_step == 400 and rep.grok_step is None


def test_rise_without_grokking_label_is_recover() -> None:
    # the same fall and rise, but train never fits: the detector says confusion, the shape says so too
    rep = detect_phases_builtin(history(PEAK_VAL, [0.5] * 41))
    assert rep.label == "confusion" and rep.shape == "peak-decline-recover"
    assert rep.pre_step == 300 and rep.pre_matched_step == 300  # no t_mem: both rules start at the first eval


def test_creeping_val_is_capped_before_the_onset() -> None:
    # val creeps up 0.002 per eval (a new best every eval: patience never runs out), then jumps to 0.9
    val = [round(0.1 + 0.002 * i, 3) for i in range(20)] + [0.9] * 21
    train = [0.5, 0.8] + [1.0] * 39
    rep = detect_phases_builtin(history(val, train))
    # t_mem = 300 (smoothed train .5 .65 .8 1 1 1); smoothed val jumps at index 21 -> t_onset 2100. The
    # raw val already jumped at index 20, so the cut lies smooth_w // 2 = 1 eval earlier: best before
    # index 20 is index 19 (raw 0.138), not step 2000 whose raw val is 0.9.
    assert (rep.label, rep.t_mem, rep.t_onset) == ("grokking", 300, 2100)
    assert (rep.pre_step, rep.pre_val, rep.pre_rule) == (1900, 0.138, "capped-before-onset")


def test_val_loss_metric_and_its_fallback() -> None:
    loss = [2.0, 1.0, 1.0] + [1.5 + 0.05 * j for j in range(15)] + [0.3] * 23
    # smoothed loss 2 1.5 1.0 1.0 1.5 ...: lowest first at index 2 (step 200); on val acc it is 300
    rep = detect_phases_builtin(history(PEAK_VAL, PEAK_TRAIN, loss), pre_metric="val_loss")
    assert rep.pre_step == 200 and "val loss" in next(r for r in rep.reasons if r.startswith("θ_pre (early-stop"))
    gappy = history(PEAK_VAL, PEAK_TRAIN, loss)
    del gappy[5]["val_loss"]
    rep = detect_phases_builtin(gappy, pre_metric="val_loss")
    assert rep.pre_step == 300 and any("no finite val_loss" in r for r in rep.reasons)
    with pytest.raises(UsageError, match="pre_metric must be one of val_acc, val_loss"):
        detect_phases_builtin(gappy, pre_metric="loss")


@pytest.mark.parametrize("metric", ["val_acc", "val_loss"])
def test_online_detector_protects_both_theta_pre(metric: str) -> None:
    loss = [2.0, 1.0, 1.0] + [1.5 + 0.05 * j for j in range(15)] + [0.3] * 23
    records = history(PEAK_VAL, PEAK_TRAIN, loss)
    saved = {s for s in STEPS if s % 200 == 100 or s in (200, 600)}  # odd hundreds plus two more
    detector = OnlineDetector(pre_metric=metric)
    kept: set[int] = set()
    for record in records:
        detector.update(record, saved=record["step"] in saved)
        if record["step"] in saved:
            kept.add(record["step"])
        kept &= detector.protected_steps() | {record["step"]}  # prune everything unprotected, as retention may
    final = detector.report()
    assert final == detect_phases_builtin(records, checkpoint_steps=saved, pre_metric=metric)
    assert {final.pre_step, final.pre_matched_step, final.grok_step} <= kept
    assert final.pre_step == (300 if metric == "val_acc" else 200)


def _peak_metrics(step: int) -> dict[str, float]:
    i = step // 100
    return {"train_acc": PEAK_TRAIN[i], "val_acc": PEAK_VAL[i]}


@pytest.fixture(scope="module")
def peak_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("pre") / "run"
    run_scripted(path, steps=STEPS, metrics=_peak_metrics)
    return path


def test_both_rules_resolve_by_name_and_are_pinned(peak_run: Any) -> None:
    assert grokplug.request_checkpoint(peak_run, "pre").step == 300
    assert grokplug.request_checkpoint(peak_run, "pre-matched").step == 600
    assert grokplug.request_checkpoint(peak_run, "grok").step == 2300
    assert RunDir(peak_run).pins == {"pre": 300, "pre-matched": 600, "grok": 2300}
    calls = []

    @grokplug.grok_aware(peak_run, phase="pre-matched")
    def method(model: torch.nn.Module) -> None:
        calls.append(model.weight.detach().clone())

    method(torch.nn.Linear(4, 3))
    ref = grokplug.request_checkpoint(peak_run, "pre-matched")
    from grokplug._store import load_weights

    assert torch.equal(calls[0], load_weights(ref.path, ref.sha256)["weight"])


def test_inspect_json_reports_shape_and_both_theta_pre(peak_run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(peak_run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["shape"], info["pre_step"], info["pre_matched_step"], info["grok_step"]) == ("peak-decline-grok", 300, 600, 2300)
    assert (info["pre_val"], info["pre_matched_val"], info["shape_numbers"]["trough_step"]) == (0.6, 0.45, 800)
    assert main(["inspect", str(peak_run)]) == 0
    text = capsys.readouterr().out
    assert "shape:      peak-decline-grok" in text and "matched-train" in text


def test_an_old_report_with_one_rule_is_redetected(peak_run: Any, tmp_path: Any) -> None:
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(peak_run, copy)
    old = json.loads((copy / "grok.json").read_text())
    for key in ("pre_matched_step", "pre_matched_rule", "pre_val", "pre_matched_val", "grok_val", "shape", "shape_numbers"):
        old.pop(key)
    old["pre_step"] = 600  # what the matched-train rule chose when it was the only one
    (copy / "grok.json").write_text(json.dumps(old))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["pins"] = {"pre": 600, "grok": 2300}  # and what an old manifest pinned
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert grokplug.request_checkpoint(copy, "pre").step == 300
    assert grokplug.request_checkpoint(copy, "pre-matched").step == 600


def test_unlearn_and_compare_take_the_matched_rule_by_name(digits_run_dir: Any, capsys: pytest.CaptureFixture[str]) -> None:
    report = RunDir(digits_run_dir).report()
    capsys.readouterr()
    assert main(["unlearn", str(digits_run_dir), "--method", "ga", "--start", "pre-matched", "--forget-rate", "0.1",
                 "--target", "none", "--set", "epochs=1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["start"], info["start_step"]) == ("pre-matched", report.pre_matched_step)
    from grokplug.compare import compare  # the package, not grokplug.compare's lazy function attribute

    with pytest.raises(UsageError, match="pre must be 'pre'"):
        compare(digits_run_dir, ["ga"], pre="pre-early", seeds=1)


def test_compare_unlearns_from_the_rule_it_names(digits_run_dir: Any, tmp_path: Any) -> None:
    """The θ_pre cells start from the checkpoint of the rule asked for: their start test accuracy is the
    val accuracy the training loop recorded at that rule's step (digits: test = the val split)."""
    from grokplug.compare import compare

    run = RunDir(digits_run_dir)
    report = run.report()
    assert report.pre_step != report.pre_matched_step  # a plateau run: the two rules differ
    val = {r["step"]: r["val_acc"] for r in run.history()}
    assert abs(val[report.pre_step] - val[report.pre_matched_step]) > 0.02  # so the check below can tell them apart
    for rule, step in (("pre", report.pre_step), ("pre-matched", report.pre_matched_step)):
        result = compare(digits_run_dir, ["ga", "ssd"], pre=rule, seeds=1, forget_rates=(0.1,), targets=["frac:0.5"],
                         out=tmp_path / rule, hparams={"ga": {"epochs": 1}}, n_boot=100, progress=False)
        for cell in (c for c in result.results["cells"] if c["start"] == "pre"):
            assert cell["start_step"] == step
            assert cell["start_metrics"]["test_acc"] == pytest.approx(val[step], abs=1e-6), (rule, cell["method"])
            for point in (cell.get("sweep") or {}).get("points", []):  # SSD's strength sweep starts there too
                assert point["test_acc"] + point["test_drop"] == pytest.approx(val[step], abs=1e-6), (rule, point)


def test_early_stop_candidate_before_any_memorization_streak_stays_protected() -> None:
    """Found by hypothesis: with smooth_w 4 the cut lies 2 evals before t_onset, so before t_mem's
    streak opens the record 2 evals back can still become θ_pre and must stay protected."""
    from test_detect import check_protection

    train = [0.5, 0.6224593312018546, 0.7310585786300049, 0.8175744761936437, 0.8807970779778823,
             0.9241418199787566, 0.9525741268224334, 0.9706877692486436]
    val = [0.04742587317756678, 0.11920292202211755, 0.2689414213699951, 0.5, 0.7310585786300049,
           0.8807970779778823, 0.9525741268224334, 0.9820137900379085]
    records = [{"step": i, "train_acc": t, "val_acc": v} for i, (t, v) in enumerate(zip(train, val, strict=True))]
    final, _ = check_protection(records, set(range(8)), smooth_w=4, tau_mem=0.75)
    assert (final.pre_step, final.pre_rule, final.t_onset) == (2, "capped-before-onset", 5)
