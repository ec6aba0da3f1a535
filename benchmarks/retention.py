"""Retention: checkpoints kept and disk used by a 20k-step run saving every 50, against dense saving.

    python benchmarks/retention.py [--steps 20000] [--every 50] [--out benchmarks/retention.json]

Trains the `modular` preset twice with identical settings: once with the default retention policy
(log-spaced + detector candidates + latest) and once keeping every checkpoint; reports both and
whether θ_pre and θ_grok are the same steps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import grokplug
from grokplug._retention import RetentionPolicy
from grokplug._rundir import RunDir


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/retention.json"))
    args = parser.parse_args()
    overrides = {"eval_every": args.every, "save_every": args.every}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, policy in (("retained", None), ("dense", RetentionPolicy.dense())):
            started = time.perf_counter()
            report = grokplug.train_preset(
                "modular", Path(tmp) / name, max_steps=args.steps, overrides=overrides, retention=policy, progress=False
            )
            run = RunDir(Path(tmp) / name)
            results[name] = {
                "label": report.label, "pre_step": report.pre_step, "grok_step": report.grok_step,
                "checkpoints_saved": args.steps // args.every + 1, "checkpoints_kept": len(run.checkpoint_steps()),
                "disk_mib": round(disk_bytes(run.path) / 2**20, 2), "wall_s": round(time.perf_counter() - started, 1),
            }
    same = all(results["retained"][k] == results["dense"][k] for k in ("pre_step", "grok_step"))
    out = {"steps": args.steps, "every": args.every, "same_choice_as_dense": same, **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
