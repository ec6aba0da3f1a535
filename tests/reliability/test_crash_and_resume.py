"""Cases 1 and 9: a training process killed with SIGKILL mid-save, and two writers on one run dir.

The training runs in a real subprocess (crash_train.py); the kill is a real SIGKILL, sent while the
process is provably inside a checkpoint save (its temp file is on disk, half-written).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import grokplug
from grokplug import _store
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug.cli import main
from grokplug.errors import RunLockedError

from reliability_support import assert_one_line_error, tree_state

SCRIPT = Path(__file__).with_name("crash_train.py")
CRASH_STEP = 120  # saves happen every 10 steps, so step 110 holds the previous complete checkpoint


def _script_module():
    spec = importlib.util.spec_from_file_location("grokplug_reliability_crash_train", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crash_train = _script_module()


@pytest.fixture(scope="module")
def straight_weights(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The final weights of the same run, never interrupted."""
    return {k: v.clone() for k, v in crash_train.train(tmp_path_factory.mktemp("straight") / "run").state_dict().items()}


def _start_paused(run: Path, where: str, step: int, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp_path / f"ready-{where}"
    log = open(tmp_path / f"child-{where}.log", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run), "--pause-at", str(step), "--pause-in", where, "--ready", str(ready)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    log.close()
    deadline = time.monotonic() + 150
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"the training process exited ({proc.returncode}) before pausing:\n{(tmp_path / f'child-{where}.log').read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the training process never reached the pause point")
        time.sleep(0.05)
    return proc, ready


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("where", ["weights", "manifest"])
def test_kill_9_mid_checkpoint_save_keeps_the_run_readable_and_resumable(where, tmp_path, straight_weights, capsys):
    run = tmp_path / "run"
    proc, _ = _start_paused(run, where, CRASH_STEP, tmp_path)
    try:
        # the kill really lands inside the save of step 120
        if where == "weights":
            partial = list((run / "checkpoints").glob(f".tmp-{CRASH_STEP:08d}-*/model.safetensors"))
            assert len(partial) == 1 and partial[0].stat().st_size > 0
        else:
            assert (run / "checkpoints" / f"{CRASH_STEP:08d}" / "model.safetensors").is_file()
            assert list(run.glob(".manifest.json.*.tmp"))
    finally:
        _kill9(proc)

    # the run dir opens; the previous checkpoint and the manifest are intact; nothing half-written is listed
    crashed = RunDir(run)
    assert crashed.status == "running"
    assert crashed.latest_step == CRASH_STEP - 10
    assert CRASH_STEP not in crashed.checkpoint_steps() and CRASH_STEP - 10 in crashed.checkpoint_steps()
    for step in crashed.checkpoint_steps():
        entry = crashed.checkpoint_entry(step)
        assert sha256_file(crashed.weights_path(step)) == entry["sha256"]
        assert set(_store.load_weights(crashed.weights_path(step), entry["sha256"])) == {"0.weight", "0.bias", "2.weight", "2.bias"}
        assert crashed.checkpoint_meta(step)["sha256"] == entry["sha256"]
    assert _store.load_optimizer(crashed, CRASH_STEP - 10) is not None  # what a resume needs
    assert [r["step"] for r in crashed.history()][: CRASH_STEP // 10] == list(range(0, CRASH_STEP, 10))
    assert grokplug.request_checkpoint(run, "final").step == CRASH_STEP - 10
    capsys.readouterr()
    assert main(["inspect", str(run), "--json"]) == 0  # inspect classifies the interrupted run
    assert json.loads(capsys.readouterr().out)["status"] == "running"

    # resume reaches the end, exactly where an uninterrupted run ends, and tidies the debris
    model = crash_train.train(run)
    resumed = RunDir(run)
    assert resumed.status == "finished" and resumed.latest_step == crash_train.STEPS
    assert [r["step"] for r in resumed.history()] == list(range(0, crash_train.STEPS + 1, 10))
    assert CRASH_STEP in [r["step"] for r in resumed.history() if r["saved"]]
    named = {Path(resumed.checkpoint_entry(s)["path"]).parent.name for s in resumed.checkpoint_steps()}
    assert {p.name for p in (run / "checkpoints").iterdir()} == named  # no orphan or temp folder left
    assert not list(run.glob(".*.tmp"))
    for step in resumed.checkpoint_steps():
        assert sha256_file(resumed.weights_path(step)) == resumed.checkpoint_entry(step)["sha256"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, straight_weights[name]), name


def test_kill_9_while_saves_are_held_in_memory_resumes_from_the_last_written_checkpoint(tmp_path, straight_weights):
    """Default ``resume_every_s``: saves kept only as the resume point are held, not written; a kill loses them."""
    run = tmp_path / "run"
    proc, _ = _start_paused(run, "held", CRASH_STEP, tmp_path)
    _kill9(proc)
    crashed = RunDir(run)
    logged = {r["step"] for r in crashed.history() if r["saved"]}
    assert {CRASH_STEP - 10, CRASH_STEP} <= logged  # both were saves of the loop ...
    assert crashed.latest_step is not None and crashed.latest_step < CRASH_STEP - 10  # ... but neither was written
    assert CRASH_STEP not in crashed.checkpoint_steps() and CRASH_STEP - 10 not in crashed.checkpoint_steps()
    assert _store.load_optimizer(crashed, crashed.latest_step) is not None  # the written latest can be resumed
    assert not list((run / "checkpoints").glob(".tmp-*"))

    model = crash_train.train(run)  # resumes from the last written checkpoint and redoes the lost steps
    resumed = RunDir(run)
    assert resumed.status == "finished" and resumed.latest_step == crash_train.STEPS
    assert [r["step"] for r in resumed.history()] == list(range(0, crash_train.STEPS + 1, 10))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, straight_weights[name]), name


def test_second_writer_gets_a_lock_error_naming_the_holder(tmp_path, capsys):
    run = tmp_path / "run"
    proc, _ = _start_paused(run, "loop", 50, tmp_path)
    try:
        before = tree_state(run)
        with pytest.raises(RunLockedError) as info:
            grokplug.GrokTracker(run, config=crash_train.CONFIG, seed=0)
        message = str(info.value)
        assert f"is being written by pid {proc.pid}" in message and str(run) in message
        assert "two trackers cannot write one run" in message and "\n" not in message
        capsys.readouterr()
        assert main(["train", "modular", "--run-dir", str(run), "--no-progress"]) == 1
        assert_one_line_error(capsys.readouterr().err, f"pid {proc.pid}", "two trackers cannot write one run")
        assert tree_state(run) == before  # the refused writers changed nothing
    finally:
        _kill9(proc)
    # the lock dies with its holder: the run can be resumed and finished
    crash_train.train(run)
    assert RunDir(run).status == "finished"
