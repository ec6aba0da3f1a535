"""Cases 32–34: one of 2 ranks of an ``accelerate launch`` dies (a real SIGKILL) mid-work.

During unlearning, during a compare cell and during tracked training, the survivor must stop within a
bounded time with one line saying why, leave nothing half-written that looks complete, leave the run's
lock free and its files untouched, and a rerun must complete. rank_fault.py arranges where the rank
dies (a plugin hook at a chosen step); the kill itself is a real SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokplug._atomic import RunLock
from grokplug._rundir import RunDir

from reliability_support import copy_run, temp_leftovers, tree_state

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("rank_fault.py")
#: the survivor must be gone this soon after the kill (torchrun notices in well under a second)
SURVIVOR_BOUND_S = 60.0
#: the lock files are rewritten by this test's own check that the lock is free
LOCK_FILES = (".lock", ".lock.owner")


def _launch(tmp_path: Path, kind: str, victim: int, at: int, *args: str, timeout: float = 420) -> tuple[subprocess.CompletedProcess[str], float | None]:
    """``accelerate launch`` 2 CPU processes of rank_fault.py; returns the result and the seconds from kill to exit."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate's launcher is installed with grokplug"
    stamp = tmp_path / f"killed-{kind}-{victim}-{at}-{time.monotonic_ns()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", str(SCRIPT), kind, str(victim), str(at), str(stamp), "--", *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    ended = time.time()
    return out, (ended - float(stamp.read_text())) if stamp.exists() else None


def _survivor_lines(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def _assert_killed_and_survivor_spoke(out: subprocess.CompletedProcess[str], after_kill: float | None, prefix: str,
                                      *needles: str) -> None:
    assert after_kill is not None, f"no rank was killed (did the run end first?):\n{out.stderr[-3000:]}"
    assert out.returncode != 0
    assert after_kill < SURVIVOR_BOUND_S, f"the launch took {after_kill:.1f} s to end after the kill"
    lines = _survivor_lines(out.stderr, prefix)
    assert len(lines) == 1, f"expected one line from the survivor starting {prefix!r}:\n{out.stderr[-3000:]}"
    for needle in needles:
        assert needle in lines[0], lines[0]
    # the survivor's own output has no traceback (torchrun's report of the killed rank follows it)
    assert "[rank0]: Traceback" not in out.stderr and "[rank1]: Traceback" not in out.stderr


def test_a_rank_killed_mid_unlearning(modular_run_dir, tmp_path):
    run = copy_run(modular_run_dir, tmp_path / "run")
    before = tree_state(run, ignore=LOCK_FILES)
    result = tmp_path / "unlearned"
    args = ("unlearn", str(run), "--method", "ga", "--start", "grok", "--out", str(result))
    out, after_kill = _launch(tmp_path, "cli", 1, 2, *args)
    _assert_killed_and_survivor_spoke(out, after_kill, "grokplug: ", "rank 0 of 2", "another rank")
    assert not result.exists(), "no unlearned model may be published by a launch that lost a rank"
    assert temp_leftovers(tmp_path / "unlearned") == [] and not list(tmp_path.glob(".unlearned.*"))
    assert tree_state(run, ignore=LOCK_FILES) == before
    with RunLock(run):  # the lock is free
        pass
    out, _ = _launch(tmp_path, "cli", -1, 0, *args)  # the rerun, nobody killed
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((result / "result.json").read_text())["method"] == "ga"
    assert tree_state(run, ignore=LOCK_FILES) == before


@pytest.mark.parametrize("victim", [1, 0])
def test_a_rank_killed_mid_compare_cell(victim, modular_run_dir, tmp_path):
    run = copy_run(modular_run_dir, tmp_path / "run")
    before = tree_state(run, ignore=LOCK_FILES)
    out_dir = tmp_path / "cmp"
    args = ("compare", str(run), "--methods", "ga,rl", "--seeds", "2", "--forget-rates", "0.15", "--out", str(out_dir),
            "--n-boot", "200", "--no-progress")
    # Cells in order ga/rl × pre/grok per seed: rank 0 runs the θ_pre cells, rank 1 the θ_grok ones. On
    # modular a ga cell evaluates 101 times and an rl cell 146 times, so the victim dies in its third cell
    # with its first two complete on disk (rank 0 is the one that would aggregate).
    out, after_kill = _launch(tmp_path, "cli", victim, 101 + 146 + 20, *args)
    _assert_killed_and_survivor_spoke(out, after_kill, "grokplug: ", f"rank {1 - victim} of 2")
    assert not (out_dir / "results.json").exists(), "rank 0 may aggregate only when every cell is in"
    finished = {}
    for path in (out_dir / "cells").glob("*.json"):
        cell = json.loads(path.read_text())  # every cell on disk is whole
        assert cell["status"] == "ok" and cell["input_hash"] and cell["key"] == path.stem
        finished[path.stem] = cell
    assert sum(f"__{('pre', 'grok')[victim]}__" in key for key in finished) >= 2, sorted(finished)
    assert tree_state(run, ignore=LOCK_FILES) == before
    out, _ = _launch(tmp_path, "cli", -1, 0, *args)  # the rerun: completes, reusing what was finished
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((out_dir / "results.json").read_text())
    assert len(results["cells"]) == 8 and all(c["status"] == "ok" for c in results["cells"])
    reused = {c["key"] for c in results["cells"] if c["reused"]}
    assert set(finished) <= reused, (sorted(finished), sorted(reused))
    assert temp_leftovers(out_dir) == []
    assert tree_state(run, ignore=LOCK_FILES) == before


def test_the_writing_rank_killed_mid_training(tmp_path):
    run = tmp_path / "run"
    example = str(ROOT / "examples" / "accelerate_tracking.py")
    args = (example, "--run-dir", str(run), "--max-steps", "1500", "--cpu")
    out, after_kill = _launch(tmp_path, "train", 0, 300, *args)  # rank 0 writes the run dir
    _assert_killed_and_survivor_spoke(out, after_kill, "accelerate_tracking: ", "another rank", "rerun")
    assert RunDir(run).status != "finished"
    with RunLock(run):  # flock dies with its holder: the lock can be taken again
        pass
    out, _ = _launch(tmp_path, "train", -1, 0, *args)  # the rerun resumes and finishes
    assert out.returncode == 0, out.stderr[-3000:]
    reports = [json.loads(line)["report"] for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 2 and reports[0] == reports[1]
    resumed = RunDir(run)
    assert resumed.status == "finished" and resumed.report().to_dict() == reports[0]
    steps = [r["step"] for r in resumed.history()]
    assert steps == sorted(set(steps)) and steps[-1] == 1500  # one writer, no step twice, to the end
    assert temp_leftovers(run) == []
