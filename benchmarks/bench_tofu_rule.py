"""Section 8, tofu-rule: seeds 0-2 of the TOFU-style grokking preset and its no-grok control, timed.

Each run is ``grokplug.train_preset("tofu-rule", ...)`` (HF Trainer + ``GrokTrackerCallback``, one torch
thread), the full budget, then the detector's report as ``grokplug inspect`` shows it, and
``request_checkpoint(run, "grok")`` without a fallback. Targets (issue 12, item 3): every seed labelled
``grokking`` with a θ_grok that resolves, the control labelled ``memorization``, and each run within
10 minutes of wall time on the 2-core machine (a shared machine's load counts against it: the CPU time of
the process is reported beside it).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from _common import Context, table, target

PRESET = "tofu-rule"
WALL_LIMIT_S = 600.0


def train_once(ctx: Context, seed: int, control: str | None, max_steps: int | None) -> dict[str, Any]:
    import grokplug
    from grokplug.errors import NoGrokError

    run_dir = ctx.work / "tofu_rule" / f"seed{seed}-{control or 'recipe'}"
    wall, cpu = time.perf_counter(), time.process_time()
    report = grokplug.train_preset(PRESET, run_dir, seed=seed, control=control, max_steps=max_steps, overwrite=True,
                                   progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    try:
        served = grokplug.request_checkpoint(run_dir, "grok").step
    except NoGrokError:
        served = None
    history = {int(r["step"]): r for r in grokplug.RunDir(run_dir).history() if "val_acc" in r}

    def at(step: int | None, key: str) -> float | None:
        return None if step is None or step not in history else round(float(history[step][key]), 4)

    out = {
        "seed": seed, "control": control, "label": report.label, "t_mem": report.t_mem, "t_gen": report.t_gen,
        "pre_step": report.pre_step, "grok_step": report.grok_step, "grok_served": served,
        "val_at_mem": at(report.t_mem, "val_acc"), "val_at_gen": at(report.t_gen, "val_acc"),
        "val_pre": at(report.pre_step, "val_acc"), "val_grok": at(report.grok_step, "val_acc"),
        "final_step": report.last_step, "train_final": at(report.last_step, "train_acc"),
        "val_final": at(report.last_step, "val_acc"), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return out


def run(ctx: Context) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    seeds = list(range(ctx.pick(3, 1)))
    budget = ctx.pick(None, 300)  # quick: a smoke run of the machinery, not a grokking measurement
    runs = []
    for seed in seeds:
        ctx.log(f"tofu_rule: seed {seed}")
        runs.append(train_once(ctx, seed, None, budget))
    ctx.log("tofu_rule: control no-grok, seed 0")
    runs.append(train_once(ctx, 0, "no-grok", budget))
    rows = [[r["seed"], r["control"] or "recipe", r["label"], r["t_mem"], r["val_at_mem"], r["t_gen"], r["val_at_gen"],
             r["pre_step"], r["val_pre"], r["grok_step"], r["val_grok"], r["grok_served"], r["train_final"], r["val_final"],
             r["wall_s"], r["cpu_s"]] for r in runs]
    recipe = [r for r in runs if r["control"] is None]
    control = [r for r in runs if r["control"] is not None]
    grokked = sum(r["label"] == "grokking" and r["grok_served"] is not None for r in recipe)
    targets = [
        target(f"{PRESET} seeds labelled grokking, θ_grok served without fallback", grokked, len(recipe), "=="),
        target(f"{PRESET} no-grok control labelled memorization", sum(r["label"] == "memorization" for r in control),
               len(control), "=="),
        target(f"{PRESET} slowest run, wall", max(r["wall_s"] for r in runs), WALL_LIMIT_S, "<=", " s",
               note="wall time on a shared machine includes other jobs' load; cpu_s is this process alone"),
    ]
    return {
        "status": "ok",
        "summary": f"{grokked}/{len(recipe)} seeds grok; control: {', '.join(r['label'] for r in control)}; "
                   f"slowest run {max(r['wall_s'] for r in runs):.0f} s wall",
        "tables": [table(f"{PRESET}: phases per seed (val = accuracy on the held-out rule-derived birth years)",
                         ["seed", "run", "label", "t_mem", "val@t_mem", "t_gen", "val@t_gen", "θ_pre", "val θ_pre",
                          "θ_grok", "val θ_grok", "served grok", "train final", "val final", "wall s", "cpu s"], rows)],
        "targets": targets,
        "notes": ["quick run: 300 steps, seed 0 only (machinery smoke test; no grokking expected)"] if ctx.quick else [],
        "data": {"runs": runs},
    }
