"""Cases 13, 14 and 16: bad forget/retain splits, a loss that turns NaN/inf, and a damaged history.jsonl."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import grokplug
from grokplug import hookimpl
from grokplug._rundir import RunDir
from grokplug._unlearning_method import UnlearningMethod
from grokplug.cli import main
from grokplug.errors import DivergedError, GrokplugWarning, UsageError
from grokplug.vision.data import ForgetSplit

from reliability_support import assert_one_line_error, copy_run, temp_leftovers, tree_state

# -- case 13 ---------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.started = False

    @hookimpl
    def grokplug_before_unlearn(self, context):
        self.started = True


def test_overlapping_forget_and_retain_are_refused_before_any_update(memorized_preset_run, tmp_path, pm):
    recorder = _Recorder()
    pm.register(recorder, name="recorder")
    data = grokplug.run_data(memorized_preset_run, forget_rate=0.15, seed=0)
    split = data.split
    leaked = ForgetSplit(split.kind, split.forget, tuple(sorted(split.retain + split.forget[:3])), split.seed, split.rate)
    with pytest.raises(UsageError) as info:
        grokplug.unlearn("ga", splits=dataclasses.replace(data, split=leaked), source=memorized_preset_run, start="pre",
                         output_dir=tmp_path / "out")
    shown = ", ".join(map(str, split.forget[:3]))
    assert f"forget and retain sets overlap in 3 position(s): {shown}" in str(info.value)
    assert not recorder.started and not (tmp_path / "out").exists()


def test_empty_forget_set_is_refused(memorized_preset_run, tmp_path, pm, capsys):
    recorder = _Recorder()
    pm.register(recorder, name="recorder")
    data = grokplug.run_data(memorized_preset_run, forget_rate=0.15, seed=0)
    x, y = data.retain.dataset.tensors
    empty = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=8)
    with pytest.raises(UsageError, match="the forget set is empty; there is nothing to unlearn"):
        grokplug.unlearn("ga", splits=dataclasses.replace(data, forget=empty, split=None), source=memorized_preset_run,
                         start="pre", output_dir=tmp_path / "out")
    assert not recorder.started and not (tmp_path / "out").exists()
    # from the CLI: a rate so small that no sample is chosen
    capsys.readouterr()
    assert main(["unlearn", str(memorized_preset_run), "--method", "ga", "--start", "pre", "--forget-rate", "0.0001"]) == 2
    assert_one_line_error(capsys.readouterr().err, "the forget set is empty")


# -- case 14 ---------------------------------------------------------------------------------------


class InfLoss(UnlearningMethod):
    """Gradient ascent whose loss is multiplied by inf: the first update makes the weights NaN/inf."""

    name = "inf-loss"
    defaults = {"updates": 50}

    def run(self, model, data, updates):
        self.losses = 0
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = next(iter(data.forget))
        for _ in range(updates):
            opt.zero_grad()
            loss = -torch.nn.functional.cross_entropy(model(x), y) * float("inf")
            self.losses += 1
            loss.backward()
            opt.step()


class NaNOneShot(UnlearningMethod):
    """A one-shot (no optimizer steps) method that leaves NaN weights."""

    name = "nan-one-shot"
    iterative = False

    def run(self, model, data):
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))


@pytest.mark.parametrize("method, updates", [("inf-loss", 1), ("nan-one-shot", 0), ("ga-huge-lr", 1)],
                         ids=["inf-loss", "nan-one-shot", "ga-huge-lr"])
def test_nan_or_inf_stops_the_run_and_writes_nothing(memorized_preset_run, tmp_path, method, updates):
    before = tree_state(memorized_preset_run)
    obj = {"inf-loss": InfLoss(), "nan-one-shot": NaNOneShot()}.get(method, "ga")
    hparams = {"lr": 1e30} if method == "ga-huge-lr" else None
    out = tmp_path / "out"
    with pytest.raises(DivergedError) as info:
        grokplug.unlearn(obj, source=memorized_preset_run, start="pre", target="none", hparams=hparams, output_dir=out)
    message = str(info.value)
    name = "ga" if method == "ga-huge-lr" else method
    assert f"unlearning with {name!r} from θ_pre diverged after {updates} update(s)" in message
    assert "NaN or infinite" in message and "no result was written" in message
    if method == "inf-loss":
        assert obj.losses == 1  # stopped at the first evaluation after the bad update, not at the end of 50
    assert not out.exists() and temp_leftovers(tmp_path) == []
    assert tree_state(memorized_preset_run) == before


def test_divergence_on_the_cli_is_one_line_exit_1(memorized_preset_run, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["unlearn", str(memorized_preset_run), "--method", "ga", "--start", "pre", "--set", "lr=1e30",
                 "--out", str(out)]) == 1
    assert_one_line_error(capsys.readouterr().err, "unlearning with 'ga' from θ_pre diverged", "no result was written")
    assert not out.exists()


# -- case 16 ---------------------------------------------------------------------------------------

BAD_LINES = [
    '{"step": 9999, "train_acc": 0.5, "val_',  # a crash mid-write: the typical case
    "[1, 2, 3]",
    "null",
    '{"step": "abc", "train_acc": 0.5, "val_acc": 0.5}',
    '{"train_acc": 0.5, "val_acc": 0.5}',
    "\udcff\udcfe binary garbage",
]


def _damage_history(run: Path, lines: list[str]) -> list[int]:
    """Insert bad lines after the first record; returns their (1-based) line numbers."""
    file = run / "history.jsonl"
    good = file.read_text().splitlines()
    text = "\n".join([good[0], *lines, *good[1:]]) + "\n"
    file.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return list(range(2, 2 + len(lines)))


@pytest.mark.parametrize("status", ["finished", "running"])
def test_malformed_history_lines_are_skipped_with_one_warning_each(memorized_preset_run, tmp_path, capsys, status):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    expected = json.loads((run / "grok.json").read_text())["label"]
    n_good = len(RunDir(run).history())
    if status == "running":  # inspect re-detects from the history itself
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["status"] = "running"
        (run / "manifest.json").write_text(json.dumps(manifest))
    bad = _damage_history(run, BAD_LINES)
    capsys.readouterr()
    assert main(["inspect", str(run), "--json", "--plot", str(tmp_path / "curves.png")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["label"] == expected and (tmp_path / "curves.png").stat().st_size > 0
    lines = captured.err.splitlines()
    assert "Traceback" not in captured.err
    for lineno in bad:
        assert sum(f"history.jsonl line {lineno} is malformed (a crash mid-write?); skipped" in w for w in lines) >= 1
    assert all(w.startswith("grokplug: warning: ") for w in lines)
    with pytest.warns(GrokplugWarning):
        assert len(RunDir(run).history()) == n_good


def test_a_record_without_accuracies_does_not_break_detection(memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    _damage_history(run, ['{"step": 5}', '{"step": 7, "train_acc": "n/a", "val_acc": null}'])
    capsys.readouterr()
    assert main(["inspect", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "memorization"


def test_resume_repairs_a_history_torn_by_a_crash(tmp_path):
    from support_runs import run_scripted

    with pytest.raises(KeyboardInterrupt):
        run_scripted(tmp_path / "run", crash_at=600)
    with open(tmp_path / "run" / "history.jsonl", "a") as fh:
        fh.write('{"step": 600, "train_acc": 1.0, "va')  # the torn last line
    with pytest.warns(GrokplugWarning, match="history.jsonl line 13 is malformed"):
        run_scripted(tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GrokplugWarning)  # repaired: no malformed line is left to warn about
        steps = [r["step"] for r in RunDir(tmp_path / "run").history()]
    assert steps == list(range(0, 3001, 50))
