"""GrokTracker on a scripted loop: history, checkpoints, retention, hooks, report, resume, locking."""

from __future__ import annotations

import json

import pytest
import torch

import grokplug
from grokplug import hookimpl
from grokplug._retention import RetentionPolicy
from grokplug._rundir import RunDir
from grokplug.errors import RunDirError, RunLockedError, UsageError

from support_runs import run_scripted


def test_tracker_writes_history_checkpoints_and_report(tmp_path):
    tracker, _ = run_scripted(tmp_path / "run")
    report = tracker.report()
    assert report.label == "grokking" and report.pre_step < report.grok_step
    run = RunDir(tmp_path / "run")
    # val is flat at 5% until step 1000: early stopping from the first eval keeps step 0 (ties keep the
    # earliest); matched train starts at t_mem = 150, the first eval whose 3-eval train median is 1.0
    assert (report.pre_step, report.pre_matched_step) == (0, 150)
    assert run.status == "finished" and run.pins == {"pre": 0, "pre-matched": 150, "grok": report.grok_step}
    assert len(run.history()) == 61 and all(r["saved"] for r in run.history())
    kept = run.checkpoint_steps()
    assert {report.pre_step, report.pre_matched_step, report.grok_step, 3000} <= set(kept)
    assert len(kept) < 30
    assert json.loads((run.path / "grok.json").read_text())["label"] == "grokking"
    # only the latest checkpoint keeps optimizer state
    assert [s for s in kept if "optimizer" in run.checkpoint_entry(s)] == [3000]


def test_retained_choice_equals_dense_choice(tmp_path):
    sparse, _ = run_scripted(tmp_path / "sparse")
    dense, _ = run_scripted(tmp_path / "dense", tracker_kwargs={"retention": RetentionPolicy.dense()})
    keys = ("pre_step", "pre_matched_step", "grok_step")
    assert [getattr(sparse.report(), k) for k in keys] == [getattr(dense.report(), k) for k in keys]
    assert len(RunDir(tmp_path / "dense").checkpoint_steps()) == 61


def test_synchronous_and_asynchronous_saving_agree(tmp_path):
    a, _ = run_scripted(tmp_path / "a", tracker_kwargs={"async_save": False})
    b, _ = run_scripted(tmp_path / "b")
    assert RunDir(tmp_path / "a").checkpoint_steps() == RunDir(tmp_path / "b").checkpoint_steps()
    assert a.report().to_dict() == b.report().to_dict()


def test_hook_grokplug_on_checkpoint_saved(tmp_path, pm):
    seen = []

    class Listener:
        @hookimpl
        def grokplug_on_checkpoint_saved(self, ref):
            seen.append((ref.step, ref.phase, ref.path.name, len(ref.sha256)))

    pm.register(Listener(), name="listener")
    run_scripted(tmp_path / "run", steps=range(0, 201, 50))
    assert seen == [(s, "candidate", "model.safetensors", 64) for s in range(0, 201, 50)]


def test_hook_grokplug_on_phase_change(tmp_path, pm):
    changes = []

    class Listener:
        @hookimpl
        def grokplug_on_phase_change(self, change):
            changes.append((change.step, change.previous, change.current, change.run_dir))

    pm.register(Listener(), name="listener")
    run_scripted(tmp_path / "run")
    states = [c[2] for c in changes]
    assert "memorized" in states and "grokked" in states
    assert states.index("memorized") < states.index("grokked")
    assert all(c[3] == tmp_path / "run" for c in changes)


def test_hook_grokplug_transform_gradients(tmp_path, pm):
    calls = []

    class Clip:
        @hookimpl
        def grokplug_transform_gradients(self, model, step):
            calls.append(step)
            for p in model.parameters():
                p.grad.zero_()

    pm.register(Clip(), name="zero-grad")
    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with grokplug.GrokTracker(tmp_path / "run") as tracker:
        for step in range(3):
            model(torch.ones(1, 2)).sum().backward()
            tracker.before_optimizer_step(model, step)
            opt.step()
            opt.zero_grad()
        tracker.log_eval(3, train_acc=0.0, val_acc=0.0)
    assert calls == [0, 1, 2] and torch.equal(model.weight, before)


def test_grokfast_filter_changes_gradients(tmp_path, pm):
    from grokplug.hooks import grokfast

    grokfast.enable(alpha=0.5, lamb=2.0)
    try:
        model = torch.nn.Linear(1, 1, bias=False)
        grads = []
        for step in range(2):
            model.weight.grad = torch.ones_like(model.weight) * (step + 1)
            pm.transform_gradients(model, step)
            grads.append(float(model.weight.grad))
        # step 0: μ=g=1 → 1+2·1 = 3; step 1: μ=0.5·1+0.5·2=1.5 → 2+2·1.5 = 5
        assert grads == [3.0, 5.0]
    finally:
        grokfast.disable()


def test_two_trackers_on_one_run_dir(tmp_path):
    first = grokplug.GrokTracker(tmp_path / "run")
    try:
        with pytest.raises(RunLockedError, match="two trackers cannot write one run"):
            grokplug.GrokTracker(tmp_path / "run")
    finally:
        first.close()


def test_refuses_to_write_into_a_foreign_directory(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(RunDirError, match="not a grokplug run directory"):
        grokplug.GrokTracker(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_finished_run_is_not_silently_retrained(tmp_path):
    run_scripted(tmp_path / "run", steps=range(0, 101, 50))
    with pytest.raises(UsageError, match="finished run"):
        grokplug.GrokTracker(tmp_path / "run")
    grokplug.GrokTracker(tmp_path / "run", overwrite=True).close()


def test_resume_after_crash_gives_the_same_report(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_scripted(tmp_path / "resumed", crash_at=1700)
    assert RunDir(tmp_path / "resumed").status == "running"
    resumed, model_r = run_scripted(tmp_path / "resumed")
    straight, model_s = run_scripted(tmp_path / "straight")
    assert resumed.start_step == 1650
    assert resumed.report().to_dict() == straight.report().to_dict()
    assert [r["step"] for r in RunDir(tmp_path / "resumed").history()] == list(range(0, 3001, 50))
    assert torch.equal(model_r.weight, model_s.weight)


def test_resume_refuses_a_different_config(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_scripted(tmp_path / "run", crash_at=200)
    with pytest.raises(UsageError, match="different config \\(differs in: task\\)"):
        grokplug.GrokTracker(tmp_path / "run", config={"task": "other"})
