"""Section 10, compare across ranks: cells per minute with 1 process and with 2 launched ranks.

One `modular` run, one matrix ({θ_pre, θ_grok} × ga, rl, ssd × 3 seeds at forget rate 0.15: 18 cells;
quick: ga × 2 seeds, 4 cells), computed from scratch three ways, each in a fresh output directory:

* ``grokplug compare`` in one process with one thread (``OMP_NUM_THREADS=1``);
* the same with two threads (what one process gets from this machine's 2 cores);
* ``accelerate launch --num_processes 2 -m grokplug compare``: two ranks of one thread each, each
  running half the cells (grokplug.compare._shard).

Wall time is the whole command as a user sees it (interpreter start, setup and the launcher included).
Each cell is computed with one thread in the first and third variants, so their results.json must be
identical apart from timings (checked); the two-thread variant may differ in the last bits of float
arithmetic, which is reported, not required. Standalone::

    python benchmarks/bench_compare_ranks.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Context, not_run, table, target  # noqa: E402

BIN = Path(sys.executable).parent
TIMINGS = ("wall_seconds", "created")


def _without_timings(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def _run(command: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, check=False)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed ({out.returncode}): {out.stderr[-800:]}")
    return wall


def measure(work: Path, quick: bool, log: Any = print) -> dict[str, Any]:
    grokplug, accelerate = BIN / "grokplug", shutil.which("accelerate", path=str(BIN))
    if not grokplug.exists() or accelerate is None:
        return {"error": "the grokplug and accelerate console scripts are not installed beside this Python"}
    run = work / "modular"
    if not (run / "manifest.json").exists():
        log("training modular (seed 0) ...")
        _run([str(grokplug), "train", "modular", "--run-dir", str(run), "--no-progress"], threads=2)
    methods, seeds = ("ga", "2") if quick else ("ga,rl,ssd", "3")
    n_cells = 2 * len(methods.split(",")) * int(seeds)
    matrix = [str(run), "--methods", methods, "--seeds", seeds, "--forget-rates", "0.15", "--n-boot", "1000",
              "--no-progress", "--json"]
    launch = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "grokplug"]
    variants = {
        "1 process, 1 thread": ([str(grokplug), "compare", *matrix], 1),
        "1 process, 2 threads": ([str(grokplug), "compare", *matrix], 2),
        "2 ranks (accelerate launch), 1 thread each": ([*launch, "compare", *matrix], 1),
    }
    rows: dict[str, Any] = {}
    for name, (command, threads) in variants.items():
        out_dir = work / f"compare-{len(rows)}"
        shutil.rmtree(out_dir, ignore_errors=True)
        log(f"compare: {name} ...")
        wall = _run([*command, "--out", str(out_dir)], threads)
        results = json.loads((out_dir / "results.json").read_text())
        computed = sum(not c["reused"] for c in results["cells"])
        rows[name] = {"wall_s": wall, "cells": computed, "cells_per_min": 60.0 * computed / wall,
                      "results": _without_timings(results)}
    one, two_threads, ranks = (rows[k] for k in variants)
    return {
        "n_cells": n_cells, "methods": methods, "seeds": int(seeds),
        "variants": {k: {kk: vv for kk, vv in v.items() if kk != "results"} for k, v in rows.items()},
        "identical_1proc_vs_2ranks": ranks["results"] == one["results"],
        "identical_1thread_vs_2threads": two_threads["results"] == one["results"],
        "speedup_vs_1thread": one["wall_s"] / ranks["wall_s"],
        "speedup_vs_2threads": two_threads["wall_s"] / ranks["wall_s"],
    }


def run(ctx: Context) -> dict[str, Any]:
    data = measure(ctx.work / "compare_ranks", ctx.quick, ctx.log)
    if "error" in data:
        return not_run(data["error"])
    rows = [[name, f"{v['cells']}", f"{v['wall_s']:.1f}", f"{v['cells_per_min']:.1f}"]
            for name, v in data["variants"].items()]
    targets = [
        target("2-rank results.json identical to 1 process (timings aside)", float(data["identical_1proc_vs_2ranks"]),
               1.0, "==", note="same cells, same statistics, same order"),
        target("2 ranks vs 1 process at 1 thread per process (wall speed-up)", round(data["speedup_vs_1thread"], 3),
               1.3, ">=", "×", note="two cores, two halves of the matrix"),
    ]
    summary = (f"{data['n_cells']} cells: {data['speedup_vs_1thread']:.2f}× the cells per minute of one 1-thread process "
               f"and {data['speedup_vs_2threads']:.2f}× of one 2-thread process with 2 ranks; results identical: "
               f"{data['identical_1proc_vs_2ranks']}")
    return {
        "status": "ok", "summary": summary,
        "tables": [table(f"`grokplug compare` on modular, {data['methods']} × {data['seeds']} seeds × θ_pre/θ_grok "
                         "at forget rate 0.15, from scratch", ["variant", "cells", "wall s", "cells / min"], rows)],
        "targets": targets, "data": data,
        "notes": [f"1 thread vs 2 threads in one process give identical results: {data['identical_1thread_vs_2threads']} "
                  "(not required: thread count may change float summation order).",
                  "Wall time includes interpreter start, setup and, for 2 ranks, the launcher (~5 s)."],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    data = measure(Path(tempfile.mkdtemp(prefix="grokplug-ranks-")), args.quick)
    print(json.dumps({k: v for k, v in data.items()}, indent=1, default=str))


if __name__ == "__main__":
    main()
