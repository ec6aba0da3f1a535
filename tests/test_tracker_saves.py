"""Which saves the tracker writes: a save kept only as the resume point is held in memory, written at
flush/close/an exception or once ``resume_every_s`` has passed (grokplug/_tracker_saves.py)."""

from __future__ import annotations

import pytest
import torch

import grokplug
from grokplug import hookimpl
from grokplug._retention import RetentionPolicy
from grokplug._rundir import RunDir
from grokplug._store import load_weights
from grokplug.errors import UsageError

from support_runs import run_scripted

# per_octave=1: the first save in each [2^k, 2^(k+1)) bucket is kept, so of the saves 10..70 the
# skeleton is 10 (bucket 3), 20 (4), 40 (5) and 70 (6); 30, 50 and 60 are kept only while newest.
ONE_PER_OCTAVE = RetentionPolicy(per_octave=1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Saver:
    """A tracker on a linear model with no detector candidates, so only the policy decides."""

    def __init__(self, run_dir, pm, **tracker_kwargs) -> None:
        self.written: list[int] = []
        outer = self

        class Listener:
            @hookimpl
            def grokplug_on_checkpoint_saved(self, ref):
                outer.written.append(ref.step)

        pm.register(Listener(), name="written-listener")
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 3)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.tracker = grokplug.GrokTracker(run_dir, config={"task": "held"}, retention=ONE_PER_OCTAVE, async_save=False,
                                            **tracker_kwargs)
        self.tracker.detector.protected_steps = lambda: ()  # type: ignore[method-assign]

    def log(self, step: int) -> None:
        with torch.no_grad():
            self.model.weight.add_(0.01)
        self.tracker.log_eval(step, train_acc=0.5, val_acc=0.1, model=self.model, optimizer=self.opt)

    @property
    def on_disk(self) -> list[int]:
        assert self.tracker.run is not None
        return self.tracker.run.checkpoint_steps()

    def with_optimizer(self) -> list[int]:
        run = self.tracker.run
        assert run is not None
        return [s for s in run.checkpoint_steps() if "optimizer" in run.checkpoint_entry(s)]


def test_a_save_kept_only_as_the_resume_point_is_held_until_flush(tmp_path, pm):
    s = Saver(tmp_path / "run", pm)
    for step in range(10, 61, 10):
        s.log(step)
    # 30 was dropped when 40 came, 50 when 60 came; 60 is held; 40 is on disk as the resume point
    assert s.on_disk == [10, 20, 40] and s.with_optimizer() == [40]
    assert s.written == [10, 20, 40]
    s.tracker.flush()
    assert s.on_disk == [10, 20, 40, 60] and s.with_optimizer() == [60]
    run = RunDir(tmp_path / "run")
    flushed = load_weights(run.weights_path(60), run.checkpoint_entry(60)["sha256"])  # verified against its hash
    assert all(torch.equal(flushed[k], v) for k, v in s.model.state_dict().items())  # the weights of step 60
    s.log(70)  # a skeleton step: written; 60 is no longer the newest and goes
    assert s.on_disk == [10, 20, 40, 70] and s.written == [10, 20, 40, 60, 70]
    s.tracker.close()
    assert RunDir(tmp_path / "run").checkpoint_steps() == [10, 20, 40, 70]


def test_resume_every_s_zero_writes_every_save_and_keeps_the_same_checkpoints(tmp_path, pm):
    s = Saver(tmp_path / "run", pm, resume_every_s=0)
    for step in range(10, 61, 10):
        s.log(step)
    assert s.on_disk == [10, 20, 40, 60] and s.written == [10, 20, 30, 40, 50, 60]
    s.log(70)
    s.tracker.close()
    assert RunDir(tmp_path / "run").checkpoint_steps() == [10, 20, 40, 70]


def test_a_held_save_is_written_once_the_last_write_is_resume_every_s_old(tmp_path, pm, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("grokplug._tracker.time", clock)
    monkeypatch.setattr("grokplug._tracker_saves.time", clock)
    s = Saver(tmp_path / "run", pm, resume_every_s=30)
    s.log(10)
    s.log(20)  # both skeleton steps: written at t = 0
    clock.now += 10
    s.log(30)
    assert s.on_disk == [10, 20]  # held: the last write is 10 s old
    clock.now += 25
    s.log(40)  # skeleton: written at t = 35
    clock.now += 35
    s.log(50)  # only the resume point, but the last write is 35 s old: written
    assert s.on_disk == [10, 20, 40, 50] and s.with_optimizer() == [50]
    clock.now += 1
    s.log(60)  # held; 50 stays on disk as the resume point until something newer is written
    assert s.on_disk == [10, 20, 40, 50] and s.with_optimizer() == [50]
    s.tracker.close()  # writes 60, and only then does 50 go
    assert RunDir(tmp_path / "run").checkpoint_steps() == [10, 20, 40, 60]
    assert s.written == [10, 20, 40, 50, 60]


def test_a_loop_that_raises_leaves_its_last_save_as_the_resume_point(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_scripted(tmp_path / "run", crash_at=1000)
    run = RunDir(tmp_path / "run")
    # 950 is in the log bucket that 750 opened, on the plateau (no candidate): retention kept it only
    # as the newest, so it was held, and the unwinding exception wrote it
    assert run.status == "running" and run.latest_step == 950
    assert "optimizer" in run.checkpoint_entry(950)
    assert run.checkpoint_meta(950)["metrics"]["step"] == 950


def test_a_held_save_that_becomes_a_candidate_is_written_from_its_own_snapshot(tmp_path, pm):
    s = Saver(tmp_path / "run", pm)
    for step in (10, 20, 30):
        s.log(step)
    at_30 = {k: v.clone() for k, v in s.model.state_dict().items()}
    assert s.on_disk == [10, 20]  # 30 held
    s.tracker.detector.protected_steps = lambda: (30,)  # type: ignore[method-assign]
    s.log(40)  # the detector now names 30: it is written late, with the weights it had at step 30
    assert s.on_disk == [10, 20, 30, 40] and s.written == [10, 20, 30, 40] and s.with_optimizer() == [40]
    run = RunDir(tmp_path / "run")
    weights = load_weights(run.weights_path(30), run.checkpoint_entry(30)["sha256"])
    assert set(weights) == set(at_30) and all(torch.equal(weights[k], at_30[k]) for k in at_30)
    assert not torch.equal(weights["weight"], s.model.weight.detach())


def test_holding_saves_changes_no_choice_and_no_kept_checkpoint(tmp_path):
    held, _ = run_scripted(tmp_path / "held")
    every, _ = run_scripted(tmp_path / "every", tracker_kwargs={"resume_every_s": 0})
    assert held.report().to_dict() == every.report().to_dict()
    assert RunDir(tmp_path / "held").checkpoint_steps() == RunDir(tmp_path / "every").checkpoint_steps()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_resume_every_s_must_be_a_finite_non_negative_number(tmp_path, bad):
    with pytest.raises(UsageError, match="resume_every_s"):
        grokplug.GrokTracker(tmp_path / "run", resume_every_s=bad)


def test_only_the_resume_point_by_hand():
    saved = [10, 20, 30]
    assert ONE_PER_OCTAVE.only_the_resume_point(30, saved)  # 30 shares bucket 4 with 20
    assert not ONE_PER_OCTAVE.only_the_resume_point(30, saved, protected=[30])
    assert not ONE_PER_OCTAVE.only_the_resume_point(20, [10, 20])  # first in its bucket
    assert not RetentionPolicy(per_octave=1, keep_last=2).only_the_resume_point(30, saved)  # survives the next save
    assert not RetentionPolicy.dense().only_the_resume_point(30, saved)


def test_a_tracker_whose_save_failed_still_closes_after_the_failure_was_reported(tmp_path, monkeypatch):
    """close() must not re-submit work to a writer that has failed (it would raise, and skip the report)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    tracker = grokplug.GrokTracker(tmp_path / "run", config={"task": "failed-save"}, retention=ONE_PER_OCTAVE)
    tracker.log_eval(10, train_acc=0.5, val_acc=0.1, model=model)
    tracker.flush()

    def disk_gone(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr("grokplug._store.save_checkpoint", disk_gone)
    tracker.log_eval(20, train_acc=0.6, val_acc=0.1, model=model)  # a skeleton step: its write fails
    with pytest.raises(OSError, match="disk gone"):
        tracker.flush()
    report = tracker.close()  # the failure was reported: close finishes the run from what was written
    assert report is not None and RunDir(tmp_path / "run").status == "finished"
    assert RunDir(tmp_path / "run").checkpoint_steps() == [10]


def test_writers_run_the_last_job_only_while_healthy():
    from grokplug._saver import BackgroundWriter, InlineWriter

    ran: list[str] = []
    writer = BackgroundWriter()
    writer.flush(last=lambda: ran.append("flush"))
    writer.close(last=lambda: ran.append("close"))
    inline = InlineWriter()
    inline.flush(last=lambda: ran.append("inline flush"))
    inline.close(last=lambda: ran.append("inline close"))
    assert ran == ["flush", "close", "inline flush", "inline close"]
