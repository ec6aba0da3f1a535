"""`accelerate launch -m grokplug compare` on 2 CPU processes gives the one-process results (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grokplug.cli import main

pytestmark = pytest.mark.slow

TIMINGS = ("wall_seconds", "created")


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def test_two_ranks_write_the_one_process_results(modular_run_dir, tmp_path, monkeypatch):
    # ga (iterative) and ssd (one-shot: its cells sweep the strength): both kinds of cell cross ranks
    args = ["--methods", "ga,ssd", "--seeds", "2", "--forget-rates", "0.15", "--n-boot", "500", "--no-progress"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the ranks below run one thread each: the same arithmetic
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["compare", str(modular_run_dir), "--out", str(tmp_path / "one"), *args]) == 0
    finally:
        torch.set_num_threads(threads)
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "grokplug", "compare", str(modular_run_dir), "--out", str(tmp_path / "two"),
         *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert len(two["cells"]) == 8 and not any(c["reused"] for c in two["cells"])
    assert _without_timings(two) == _without_timings(one)
    # each rank ran its half: the cache has all 8 cells, and rank 1 said it left the writing to rank 0
    assert len(list((tmp_path / "two" / "cells").glob("*.json"))) == 8
    assert "rank 1 of 2: the matrix's 8 cells are in" in out.stderr
    # a rerun with any number of ranks reuses every cell
    assert main(["compare", str(modular_run_dir), "--out", str(tmp_path / "two"), *args]) == 0
    again = json.loads((tmp_path / "two" / "results.json").read_text())
    assert all(c["reused"] for c in again["cells"])
