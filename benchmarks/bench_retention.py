"""Section 3, retention: checkpoints kept and disk used by a 20k-step run saving every 50, against dense saving.

Trains the ``modular`` preset twice with identical settings: once with the default retention policy
(log-spaced + detector candidates + latest) and once keeping every checkpoint; reports both and
whether θ_pre and θ_grok are the same steps. Standalone (the old ``benchmarks/retention.py``)::

    python benchmarks/bench_retention.py [--steps 20000] [--every 50] [--out benchmarks/retention.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Context, table, target  # noqa: E402

MAX_KEPT = 40


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(steps: int, every: int, work: Path, log: Any = print) -> dict[str, Any]:
    """The old benchmarks/retention.py, unchanged in substance."""
    import grokplug
    from grokplug._retention import RetentionPolicy
    from grokplug._rundir import RunDir

    overrides = {"eval_every": every, "save_every": every}
    results: dict[str, Any] = {}
    for name, policy in (("retained", None), ("dense", RetentionPolicy.dense())):
        log(f"retention: {name} run, {steps} steps, saving every {every}")
        started = time.perf_counter()
        report = grokplug.train_preset(
            "modular", work / name, max_steps=steps, overrides=overrides, retention=policy, progress=False, overwrite=True
        )
        run = RunDir(work / name)
        results[name] = {
            "label": report.label, "pre_step": report.pre_step, "pre_matched_step": report.pre_matched_step,
            "grok_step": report.grok_step,
            "checkpoints_saved": steps // every + 1, "checkpoints_kept": len(run.checkpoint_steps()),
            "kept_steps": run.checkpoint_steps(),
            "disk_mib": round(disk_bytes(run.path) / 2**20, 3), "wall_s": round(time.perf_counter() - started, 1),
        }
    same = all(results["retained"][k] == results["dense"][k] for k in ("pre_step", "pre_matched_step", "grok_step"))
    return {"steps": steps, "every": every, "same_choice_as_dense": same, **results}


def run(ctx: Context) -> dict[str, Any]:
    steps = ctx.pick(20_000, 2_000)
    every = 50
    out = measure(steps, every, ctx.work / "retention", ctx.log)
    ret, dense = out["retained"], out["dense"]
    rows = [
        [name, r["label"], r["pre_step"], r["grok_step"], r["checkpoints_saved"], r["checkpoints_kept"], r["disk_mib"], r["wall_s"]]
        for name, r in (("default retention", ret), ("dense (keep all)", dense))
    ]
    grokked = ret["grok_step"] is not None and dense["grok_step"] is not None
    return {
        "status": "ok",
        "summary": (f"{steps} steps saving every {every}: {ret['checkpoints_kept']} checkpoints kept "
                    f"({ret['disk_mib']} MiB) vs {dense['checkpoints_kept']} ({dense['disk_mib']} MiB) dense; "
                    f"θ_pre/θ_grok {'identical to' if out['same_choice_as_dense'] else 'DIFFERENT from'} the dense choice"),
        "tables": [table("modular preset, identical runs except the retention policy",
                         ["policy", "label", "θ_pre", "θ_grok", "saved", "kept", "disk MiB", "wall s"], rows)],
        "targets": [
            target("checkpoints kept (default retention)", ret["checkpoints_kept"], MAX_KEPT, "<="),
            target("θ_pre and θ_grok identical to the dense choice (1 = yes)", int(out["same_choice_as_dense"]), 1, "==",
                   note="" if grokked else "the run did not grok, so θ_grok is absent in both"),
        ],
        "notes": [f"kept steps: {', '.join(map(str, ret['kept_steps']))}",
                  "disk includes the run's history, manifest, splits and report, not only weights"],
        "data": {k: v for k, v in out.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/retention.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = measure(args.steps, args.every, Path(tmp))
    out["dense"].pop("kept_steps", None)  # every saved step; too long to print
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
