"""A real 2-process `accelerate launch` on CPU (gloo): rank 0 writes, every rank gets the same report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grokplug._rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_tracking_on_cpu(tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate's launcher is installed with grokplug"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", str(ROOT / "examples" / "accelerate_tracking.py"),
         "--run-dir", str(tmp_path / "run"), "--max-steps", "1500", "--cpu"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted(line["rank"] for line in lines) == [0, 1]
    reports = [line["report"] for line in lines]
    assert reports[0] == reports[1]
    run = RunDir(tmp_path / "run")
    assert run.report().to_dict() == reports[0]
    assert [r["step"] for r in run.history()] == sorted({r["step"] for r in run.history()})  # one writer
