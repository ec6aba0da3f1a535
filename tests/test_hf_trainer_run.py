"""Bring your own HF Trainer run: θ_pre / θ_grok resolved from a real Trainer output directory (no
retraining), checked against a grokplug run tracked from the same evaluations; the tracker callback
stops training once θ_grok is settled; the output directory is never modified."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from support_hf_run import ModularClassifier

import grokplug
import grokplug.errors
import grokplug.external
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug.cli import main
from grokplug.errors import CheckpointError, UsageError

METRICS = {"val_metric": "eval_val_acc", "train_metric": "eval_train_acc"}
MAX_STEPS = 1500  # conftest's hf_trainer_output budget


@pytest.fixture(scope="module")
def hf_run(hf_trainer_output):
    """(output dir, tracked grokplug run dir, trainer, callback, sha256 of every file in the output dir)."""
    out, tracked, trainer, callback = hf_trainer_output
    hashes = {str(p): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()}
    return out, tracked, trainer, callback, hashes


def test_callback_stops_training_once_grok_is_settled(hf_run):
    out, tracked, trainer, callback, _ = hf_run
    report = RunDir(tracked).report()
    assert report.label == "grokking"
    # it stopped well before the budget, after θ_grok, on the eval where it asked to
    assert callback.stopped_at == trainer.state.global_step < MAX_STEPS
    assert report.grok_step < callback.stopped_at
    assert callback.settled_evals == 4  # stop_after_settled=3: the 4th consecutive settled eval stops
    assert RunDir(tracked).history()[-1]["step"] == callback.stopped_at


def test_stop_after_settled_must_be_non_negative(tmp_path):
    with grokplug.GrokTracker(tmp_path / "r", config={}, seed=0) as tracker, pytest.raises(UsageError):
        grokplug.GrokTrackerCallback(tracker, stop_after_settled=-1)


def test_resolves_pre_and_grok_like_the_tracked_run(hf_run):
    out, tracked, *_ = hf_run
    reference = RunDir(tracked).report()  # the same evaluations, tracked by grokplug itself
    for phase, step in (("pre", reference.pre_step), ("grok", reference.grok_step)):
        ref = grokplug.request_checkpoint(out, phase, **METRICS)
        assert ref.provider == "hf-trainer-output" and ref.step == step
        assert ref.path == out / f"checkpoint-{step}" / "model.safetensors"
        # the Trainer's checkpoint and the tracker's, saved by two different code paths at that step
        ours = load_file(RunDir(tracked).weights_path(step))
        theirs = load_file(ref.path)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_load_checkpoint_fills_a_model_at_grok(hf_run):
    out, tracked, *_ = hf_run
    model = ModularClassifier()
    with pytest.raises(UsageError, match="eval_val_acc"):  # default names absent: the error lists what is there
        grokplug.request_checkpoint(out, "grok")
    ref = grokplug.request_checkpoint(out, "grok", **METRICS)
    grokplug.load_checkpoint(model, ref)
    from grokplug.presets.modular import modular_pairs

    x, y = modular_pairs(59)
    with torch.no_grad():
        acc = (model(x)["logits"].argmax(-1) == y).float().mean().item()
    assert acc == pytest.approx((ref.metrics["train_acc"] * 1740 + ref.metrics["val_acc"] * 1741) / 3481, abs=1e-6)


def test_sparse_checkpoints_name_the_nearest(hf_run, tmp_path):
    out, tracked, *_ = hf_run
    grok = RunDir(tracked).report().grok_step
    sparse = tmp_path / "sparse"
    shutil.copytree(out, sparse)
    for offset in (0, 10):  # the run kept no checkpoint at θ_grok nor one eval after
        shutil.rmtree(sparse / f"checkpoint-{grok + offset}")
    with pytest.raises(CheckpointError, match=rf"θ_grok .* is step {grok}, but .* the nearest is step {grok - 10}"):
        grokplug.request_checkpoint(sparse, "grok", **METRICS)
    ref = grokplug.request_checkpoint(sparse, "grok", nearest=True, **METRICS)
    assert ref.step == grok - 10 and ref.requested_phase == "grok"


def test_hook_grokplug_read_history(hf_run, pm):
    out, tracked, *_ = hf_run
    run = grokplug.external.read_history(out, **METRICS)
    tracked_history = RunDir(tracked).history()
    assert [r["step"] for r in run.history] == [r["step"] for r in tracked_history]
    assert [(r["train_acc"], r["val_acc"]) for r in run.history] == [
        (r["train_acc"], r["val_acc"]) for r in tracked_history]
    assert run.checkpoint_steps == sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))

    class Lightning:  # a third-party provider of another kind of run answers first for its own sources
        @grokplug.hookimpl
        def grokplug_read_history(self, request):
            if str(request.source).startswith("lightning://"):
                return grokplug.external.RunHistory(str(request.source), "lightning", tracked_history, [50])
            return None

    pm.register(Lightning(), name="lightning")
    assert grokplug.external.read_history("lightning://x").kind == "lightning"
    assert grokplug.external.read_history(out, **METRICS).kind == "hf-trainer-output"


def test_inspect_cli_on_the_output_dir(hf_run, capsys):
    out, tracked, *_ = hf_run
    reference = RunDir(tracked).report()
    argv = ["inspect", str(out), "--json", "--option", "val_metric=eval_val_acc", "--option", "train_metric=eval_train_acc"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["label"], summary["pre_step"], summary["grok_step"]) == (
        reference.label, reference.pre_step, reference.grok_step)
    assert summary["grok_checkpoint"] == reference.grok_step and summary["status"] == "hf-trainer-output"
    assert main(["inspect", str(out), "--option", "bogus=1"]) == 2
    assert "unknown option(s) for an HF Trainer output directory: bogus" in capsys.readouterr().err


def test_export_of_an_hf_checkpoint_folder(hf_run, tmp_path):
    out, *_ = hf_run
    dest = grokplug.export_checkpoint(out, tmp_path / "exp", "grok", **METRICS)
    info = json.loads((dest / "grokplug_export.json").read_text())
    ref = grokplug.request_checkpoint(out, "grok", **METRICS)
    assert info["step"] == ref.step and info["source_sha256"] == ref.sha256 == sha256_file(dest / "model.safetensors")
    assert info["format"] == "state_dict"  # a plain nn.Module trained by the Trainer: no config.json
    assert not list(dest.glob("*.bin")) and not list(dest.glob("*.pt"))


def test_output_dir_is_never_modified(hf_run):
    out, *_, hashes = hf_run  # runs last in this module: every test above only read the directory
    assert {str(p): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()} == hashes


def test_a_provider_returning_the_wrong_type_is_named(pm, tmp_path):
    class Broken:
        @grokplug.hookimpl
        def grokplug_read_history(self, request):
            return {"history": []}

    pm.register(Broken(), name="broken-reader")
    with pytest.raises(grokplug.errors.PluginError, match="broken-reader.*must return a RunHistory or None"):
        grokplug.external.read_history(tmp_path)
