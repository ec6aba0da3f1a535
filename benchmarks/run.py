"""Run grokplug's benchmarks and write ``benchmarks/results.json`` and ``benchmarks/RESULTS.md``.

    python benchmarks/run.py                      # everything (`make bench`), ~25 min + section 8 (≤ 40 min)
    python benchmarks/run.py --quick              # smoke run: fewer steps and repeats (minutes)
    python benchmarks/run.py --only hooks,tracker --out-dir /tmp/b

Sections (run in this order): hooks, tracker, retention, checkpoint, tofu_eval, accelerators,
grok_advantage, tofu_rule, regime, compare_ranks. Each reports medians and spread over repeats, and a pass/fail per target. A
section whose prerequisites are missing says ``not run`` and why; one that fails says ``error``
with the exception; neither ever shows a number it did not measure. ``--only`` merges into an
existing results.json, so sections can be rerun one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: one thread per process, less noise when shared
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import Context  # noqa: E402
from _report import render_markdown  # noqa: E402

SECTIONS: dict[str, str] = {
    "hooks": "bench_hooks",
    "tracker": "bench_tracker",
    "retention": "bench_retention",
    "checkpoint": "bench_checkpoint",
    "tofu_eval": "bench_tofu_eval",
    "accelerators": "bench_accelerators",
    "grok_advantage": "bench_grok_advantage",
    "tofu_rule": "bench_tofu_rule",
    "regime": "bench_regime",
    "compare_ranks": "bench_compare_ranks",
}
TITLES = {
    "hooks": "1. Hook dispatch",
    "tracker": "2. Tracker overhead",
    "retention": "3. Retention",
    "checkpoint": "4. Checkpoint load",
    "tofu_eval": "5. TOFU evaluation throughput",
    "accelerators": "6. Grokking accelerators",
    "grok_advantage": "7. The grok advantage",
    "tofu_rule": "8. TOFU-style grokking (tofu-rule)",
    "regime": "9. The paper's regime (Fig. 1a shape)",
    "compare_ranks": "10. Compare across ranks",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    for name in ("transformers", "pluggy", "safetensors", "accelerate", "grokplug"):
        try:
            import importlib.metadata as md

            env[name] = md.version(name)
        except Exception:  # noqa: BLE001 - an absent package is recorded, not fatal
            env[name] = None
    return env


def run_section(name: str, ctx: Context) -> dict[str, Any]:
    import importlib

    started, cpu = time.perf_counter(), time.process_time()
    try:
        module = importlib.import_module(SECTIONS[name])
        result = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        result = {"status": "error", "why": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["cpu_s"] = round(time.process_time() - cpu, 1)  # this process only: what the section costs when the machine is quiet
    result.setdefault("status", "ok")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=None, help="override every section's repeat count")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="scratch dir for runs, kept afterwards (default: a temp dir, removed at the end)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    import tempfile

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="grokplug-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    ctx = Context(quick=args.quick, work=work, repeats=args.repeats, log=log)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / "results.json"
    previous: dict[str, Any] = {}
    if args.only and json_path.exists():
        try:
            previous = json.loads(json_path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
    results: dict[str, Any] = {
        "environment": environment(),
        "quick": args.quick,
        "sections": dict(previous.get("sections", {})) if previous.get("quick") == args.quick else {},
    }
    total = time.perf_counter()
    for name in (s for s in SECTIONS if s in only):
        log(f"section {name} ...")
        result = run_section(name, ctx)
        result["title"] = TITLES[name]
        result["measured_at"] = results["environment"]["date"]  # --only merges sections from several runs
        result["git_commit"] = results["environment"]["git_commit"]
        results["sections"][name] = result
        log(f"section {name}: {result['status']} in {result['wall_s']} s"
            + (f" ({result.get('why')})" if result["status"] != "ok" else ""))
        _write(results, args.out_dir)  # after every section: an interrupted run keeps what it measured
    results["wall_s"] = round(time.perf_counter() - total, 1)
    _write(results, args.out_dir)
    if args.work_dir is None:  # a temp dir of our own: runs and checkpoints are not results
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {args.out_dir / 'results.json'} and {args.out_dir / 'RESULTS.md'} in {results['wall_s']} s")
    return 1 if any(r["status"] == "error" for r in results["sections"].values()) else 0


def _write(results: dict[str, Any], out_dir: Path) -> None:
    ordered = {k: results["sections"][k] for k in SECTIONS if k in results["sections"]}
    results = {**results, "sections": ordered}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))


if __name__ == "__main__":
    sys.exit(main())
