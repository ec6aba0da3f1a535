"""Case 15: the disk fills up, the output dir is read-only, or a file-size limit hits, while saving.

Real faults where the machine allows them: a read-only directory (chmod 0555 for a normal user; a
read-only tmpfs mount for root, whom permission bits do not stop), a 64 KiB tmpfs that fills up
(ENOSPC from the kernel), and RLIMIT_FSIZE in a real CLI process (EFBIG). Only where mounting is not
permitted (root without CAP_SYS_ADMIN) are the same errors raised by a patched writer instead.
In every case: a one-line GrokplugError, and nothing under the output location that looks complete.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

import grokplug
from grokplug import _tensor_files
from grokplug._atomic import sha256_file
from grokplug._retention import RetentionPolicy
from grokplug._rundir import RunDir
from grokplug.errors import GrokplugError

from reliability_support import assert_one_line_error, read_only_dir, run_cli, temp_leftovers, tiny_filesystem


def _unlearn_into(source: Path, out: Path) -> GrokplugError:
    with pytest.raises(GrokplugError) as info:
        grokplug.unlearn("ssd", source=source, start="pre", output_dir=out)
    assert "\n" not in str(info.value)
    return info.value


def _simulated_disk_full(monkeypatch: pytest.MonkeyPatch, after_calls: int = 0) -> None:
    """What safetensors raises on a full disk (a SafetensorError carrying the errno), after writing some bytes."""
    real = _tensor_files.save_file
    calls = {"n": 0}

    def save_file(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] <= after_calls:
            return real(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(b"\0" * 1000)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(_tensor_files, "save_file", save_file)


@pytest.mark.parametrize("nested", [False, True], ids=["out-in-ro-dir", "out-parents-in-ro-dir"])
def test_read_only_output_dir(memorized_preset_run, tmp_path, monkeypatch, nested):
    ro = tmp_path / "ro"
    with read_only_dir(ro) as how:
        out = ro / "a" / "b" / "out" if nested else ro / "out"
        if how is None:  # root without the right to mount: raise what a read-only filesystem raises
            def refuse(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))

            real_mkdir = Path.mkdir

            def mkdir(self, *args, **kwargs):
                return refuse() if ro in self.parents else real_mkdir(self, *args, **kwargs)

            monkeypatch.setattr(tempfile, "mkdtemp", refuse)
            monkeypatch.setattr(Path, "mkdir", mkdir)
        error = _unlearn_into(memorized_preset_run, out)
        reason = "permission denied" if how == "chmod" else "the filesystem is read-only"
        assert str(error) == f"cannot write the unlearned model to {out}: {reason}; nothing was left half-written"
        assert not out.exists() and list(ro.iterdir()) == []


def test_disk_full_while_writing_the_unlearned_model(memorized_preset_run, tmp_path, monkeypatch):
    tiny = tmp_path / "tiny"
    with tiny_filesystem(tiny, "64k") as real:  # the modular model is ~110 KB
        if not real:
            _simulated_disk_full(monkeypatch)
        out = tiny / "out"
        error = _unlearn_into(memorized_preset_run, out)
        assert str(error) == f"cannot write the unlearned model to {out}: the disk is full; nothing was left half-written"
        assert not out.exists() and list(tiny.iterdir()) == []  # no partial file, no temp folder


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_file_size_limit_in_a_real_cli_process(memorized_preset_run, tmp_path):
    model_bytes = grokplug.request_checkpoint(memorized_preset_run, "pre").path.stat().st_size
    out = tmp_path / "results" / "out"
    proc = run_cli("unlearn", str(memorized_preset_run), "--method", "ssd", "--start", "pre", "--out", str(out),
                   preexec_fn=lambda: _limit_file_size(model_bytes // 2))
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, f"cannot write the unlearned model to {out}", "the file size limit is exceeded",
                          "nothing was left half-written")
    assert not out.exists() and temp_leftovers(tmp_path / "results") == []


def test_disk_full_while_training_keeps_every_listed_checkpoint_valid(tmp_path, monkeypatch):
    tiny = tmp_path / "tiny"
    with tiny_filesystem(tiny, "64k") as real:
        if not real:
            _simulated_disk_full(monkeypatch, after_calls=5)
        run_dir = tiny / "run"
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 32)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        with pytest.raises(GrokplugError) as info:
            with grokplug.GrokTracker(run_dir, config={"task": "disk-full"}, retention=RetentionPolicy.dense(), async_save=False) as tracker:
                for step in range(0, 1000, 10):
                    with torch.no_grad():
                        model.weight.add_(0.01)
                    tracker.log_eval(step, train_acc=0.5, val_acc=0.1, model=model, optimizer=opt)
        message = str(info.value)
        assert "the disk is full" in message and str(run_dir) in message and "\n" not in message
        run = RunDir(run_dir)  # the manifest is whole, and everything it lists verifies
        assert run.status == "running" and run.checkpoint_steps()
        for step in run.checkpoint_steps():
            assert sha256_file(run.weights_path(step)) == run.checkpoint_entry(step)["sha256"]
        assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
        assert not list(run_dir.glob(".*.tmp"))



class _FullDiskOs:
    """``os`` as grokplug._rundir sees it on a full disk (the fallback where no tmpfs can be mounted)."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_on_a_history_append_leaves_no_torn_line(tmp_path, monkeypatch):
    from grokplug import _rundir

    tiny = tmp_path / "tiny"
    with tiny_filesystem(tiny, "64k") as real:
        tracker = grokplug.GrokTracker(tiny / "run", config={"task": "history-full"})
        tracker.log_eval(0, train_acc=0.1, val_acc=0.1)
        if real:  # take every free block; the next record needs a new one
            with pytest.raises(OSError), open(tiny / "filler", "wb") as fh:
                fh.write(b"\0" * (1 << 20))
        else:
            monkeypatch.setattr(_rundir, "os", _FullDiskOs())
        history = tiny / "run" / "history.jsonl"
        with pytest.raises(GrokplugError) as info:
            tracker.log_eval(10, train_acc=0.2, val_acc=0.1, **{f"metric_{i}": 0.5 for i in range(400)})  # > 4 KiB
        assert str(info.value) == f"cannot append an eval record to {history}: the disk is full; nothing was left half-written"
        if real:
            (tiny / "filler").unlink()
        else:
            monkeypatch.undo()
        tracker.log_eval(20, train_acc=0.3, val_acc=0.1)  # training goes on once there is room again
        tracker.close()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no torn line to warn about
            assert [r["step"] for r in RunDir(tiny / "run").history()] == [0, 20]
