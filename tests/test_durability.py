"""Durable points: tracker saves skip fsync, a durable point flushes what is still named, a torn manifest
is read from the durable copy (grokplug/_durability.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

import grokplug
from grokplug import _store
from grokplug._rundir import RunDir
from grokplug.errors import GrokplugWarning, RunDirError


@pytest.fixture
def fsynced(monkeypatch) -> list[str]:
    """Every path this process fsyncs, in order (read back from the descriptor)."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _train(run_dir: Path, steps: int, **tracker_kwargs) -> grokplug.GrokTracker:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = grokplug.GrokTracker(run_dir, save_every=10, async_save=False, **tracker_kwargs)
    for step in range(10, steps + 1, 10):
        model(torch.ones(2, 4)).sum().backward()
        opt.step()
        tracker.log_eval(step, train_acc=min(1.0, step / 50), val_acc=0.1, model=model, optimizer=opt)
    return tracker


def test_saves_between_durable_points_are_not_fsynced_and_close_flushes_what_is_kept(tmp_path, fsynced):
    tracker = _train(tmp_path / "run", 200, durable_every_s=3600)
    run = tracker.run
    assert run is not None and len(run.checkpoint_steps()) >= 3
    assert not any("/checkpoints/" in p for p in fsynced)  # 20 saves, none flushed yet
    assert run.pending_sync.folders  # ... and they are owed a flush
    tracker.close()
    kept = RunDir(tmp_path / "run")
    for step in kept.checkpoint_steps():
        assert str(kept.weights_path(step)) in fsynced, step  # every named checkpoint reached the disk
    latest = kept.checkpoint_entry(kept.latest_step)
    assert str(kept.resolve_inside(latest["optimizer"])) in fsynced
    # a durable point orders the files before the manifest that names them
    last_weights = max(i for i, p in enumerate(fsynced) if p.endswith("model.safetensors"))
    last_manifest = max(i for i, p in enumerate(fsynced) if "manifest.json" in p)
    assert last_weights < last_manifest
    assert json.loads((tmp_path / "run" / "manifest.durable.json").read_text()) == kept.manifest


def test_a_durable_interval_of_zero_flushes_every_save(tmp_path, fsynced):
    tracker = _train(tmp_path / "run", 30, durable_every_s=0)
    # written into the checkpoint's temp folder (.tmp-<step>-…) and flushed there, before the rename
    flushed = sorted({re.search(r"(\d{8})", Path(p).parent.name).group(1) for p in fsynced if p.endswith("model.safetensors")})
    assert flushed == ["00000010", "00000020", "00000030"]
    tracker.close()


def test_flush_is_a_durable_point(tmp_path, fsynced):
    tracker = _train(tmp_path / "run", 30, durable_every_s=3600)
    before = len(fsynced)
    tracker.flush()
    assert str(tracker.run.weights_path(30)) in fsynced[before:]
    assert not tracker.run.pending_sync.folders
    tracker.close()


def test_a_torn_manifest_is_read_from_the_durable_copy_without_the_checkpoints_gone_since(tmp_path):
    run_dir = tmp_path / "run"
    tracker = _train(run_dir, 40, durable_every_s=3600)
    tracker.flush()  # durable point: the copy names 10..40 (what retention kept)
    durable = RunDir(run_dir).manifest
    named = sorted(int(s) for s in durable["checkpoints"])
    tracker.close()
    gone = named[0]
    # a power loss later: the folder of a checkpoint pruned after the durable point is gone, and the
    # manifest replaced without fsync came back empty
    shutil.rmtree(run_dir / "checkpoints" / f"{gone:08d}")
    (run_dir / "manifest.json").unlink()  # the renamed-in inode came back empty
    (run_dir / "manifest.json").write_text("")
    with pytest.warns(GrokplugWarning, match=f"last durable point .*without steps {gone}"):
        recovered = RunDir(run_dir)
    assert recovered.checkpoint_steps() == named[1:]
    assert recovered.latest_step == named[-1]
    entry = recovered.checkpoint_entry(named[-1])
    assert set(_store.load_weights(recovered.weights_path(named[-1]), entry["sha256"])) == {"weight", "bias"}


def test_an_unreadable_manifest_without_a_durable_copy_is_still_an_error(tmp_path):
    run_dir = tmp_path / "run"
    _train(run_dir, 20).close()
    (run_dir / "manifest.durable.json").unlink()
    (run_dir / "manifest.json").write_text("{")
    with pytest.raises(RunDirError, match="cannot read"):
        RunDir(run_dir)


def test_a_checkpoint_that_retention_would_drop_at_once_is_not_written(tmp_path):
    from grokplug._retention import RetentionPolicy

    # keep_last=0: a new save survives only as the first of its log bucket; step 30 shares 20's bucket
    tracker = _train(tmp_path / "run", 30, retention=RetentionPolicy(keep_last=0, per_octave=1))
    assert tracker.run.checkpoint_steps() == [10, 20]
    assert not (tmp_path / "run" / "checkpoints" / "00000030").exists()
    tracker.close()


def test_a_save_prunes_in_the_same_manifest_write(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path / "run", {"config": {}})
    tensors = {"w": torch.ones(3)}
    opt = ({"state.0.exp_avg": torch.zeros(3)}, {})
    for step in (10, 20):
        _store.save_checkpoint(run, step, tensors, {}, optimizer=opt)
    writes = []
    original = run.write_manifest
    monkeypatch.setattr(run, "write_manifest", lambda **kw: (writes.append(kw), original(**kw))[1])
    _store.save_checkpoint(run, 30, tensors, {}, optimizer=opt, drop_optimizer=[20], delete=[10], durable=False)
    assert writes == [{"durable": False}]
    assert RunDir(run.path).checkpoint_steps() == [20, 30]
    assert "optimizer" not in run.checkpoint_entry(20) and "optimizer" in run.checkpoint_entry(30)
    assert not (run.path / "checkpoints" / "00000010").exists()
    assert not (run.path / "checkpoints" / "00000020" / "optimizer.safetensors").exists()


def test_after_a_failed_save_the_queued_saves_never_run():
    # a failure is reported at the next submit; saves queued behind it must not land afterwards (a
    # resume then starts at the last save before the failure, as the run's history says)
    import threading

    from grokplug._saver import BackgroundWriter
    from grokplug.errors import GrokplugError

    writer = BackgroundWriter(max_pending=4)
    release = threading.Event()
    ran = []

    def fail() -> None:
        release.wait(10)
        raise OSError("disk gone")

    writer.submit(fail)
    writer.submit(lambda: ran.append(2))  # queued while the first one still runs
    release.set()
    with pytest.raises(OSError, match="disk gone"):
        writer.flush()
    with pytest.raises(GrokplugError, match="saves nothing more"):
        writer.submit(lambda: ran.append(3))
    writer.close()
    assert ran == []


@pytest.mark.parametrize("bad", [-1, float("nan"), "soon"])
def test_a_durable_interval_that_is_not_a_number_of_seconds_is_refused(tmp_path, bad):
    from grokplug.errors import UsageError

    with pytest.raises(UsageError, match="durable_every_s"):
        grokplug.GrokTracker(tmp_path / "run", durable_every_s=bad)
    assert not (tmp_path / "run" / "manifest.json").exists()
