"""``grokplug demo``: the end-to-end path on the built-in offline presets.

Trains (or reuses) the ``modular`` and ``digits`` runs, detects their phases, plots them, and serves
θ_pre and θ_grok through the hooks, exactly as an unlearning method would request them.
"""

from __future__ import annotations

import time
from pathlib import Path

from ._plot import plot_run
from ._resolve import request_checkpoint
from ._rundir import RunDir
from ._train import train_preset
from .plugins import get_plugin_manager

DEMO_PRESETS = ("modular", "digits")


def _reusable(run_dir: Path, config: dict) -> bool:
    if not RunDir.exists(run_dir):
        return False
    run = RunDir(run_dir)
    return run.status == "finished" and run.config == config


def prepare_run(preset_name: str, out_dir: Path, *, seed: int = 0, progress: bool = True) -> tuple[RunDir, bool]:
    """Train ``preset_name`` into ``out_dir/<preset>``, or reuse a finished run of the same recipe."""
    preset = get_plugin_manager().presets.get(preset_name)
    run_dir = out_dir / preset_name
    reused = _reusable(run_dir, preset.resolve_config())
    if not reused:
        train_preset(preset, run_dir, seed=seed, overwrite=RunDir.exists(run_dir), progress=progress)
    return RunDir(run_dir), reused


def run_demo(out_dir: Path = Path("runs/demo"), *, progress: bool = True) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in DEMO_PRESETS:
        started = time.perf_counter()
        run, reused = prepare_run(name, out_dir, progress=progress)
        report = run.report()
        plot = plot_run(run.history(), report, out_dir / f"{name}.png", title=name)
        pre = request_checkpoint(run.path, "pre")
        grok = request_checkpoint(run.path, "grok", fallback="final")
        rows.append((name, report, pre, grok, len(run.checkpoint_steps()), time.perf_counter() - started, reused, plot))

    print("\npreset    label      t_mem  t_gen  ratio  θ_pre (val)     θ_grok (val)    kept  time")
    for name, report, pre, grok, kept, seconds, reused, _ in rows:
        ratio = f"{report.grok_ratio:.1f}" if report.grok_ratio else "—"
        print(
            f"{name:<9} {report.label:<10} {report.t_mem!s:>5}  {report.t_gen!s:>5}  {ratio:>5}  "
            f"{pre.step:>5} ({pre.metrics.get('val_acc', float('nan')):.2f})   "
            f"{grok.step:>5} ({grok.metrics.get('val_acc', float('nan')):.2f})   {kept:>4}  "
            f"{'reused' if reused else f'{seconds:.0f} s'}"
        )
    print()
    for name, report, pre, grok, *_rest, plot in rows:
        if report.label == "grokking":
            print(
                f"{name}: the model memorised its training set by step {report.t_mem} (validation {report.val_at_mem:.0%}) "
                f"and generalised only by step {report.t_gen}, {report.grok_ratio:.1f}× later. An unlearning method can "
                f"now start from θ_pre (step {pre.step}) or θ_grok (step {grok.step})."
            )
        else:
            print(f"{name}: no grokking this time (label: {report.label}); θ_grok falls back to the final checkpoint.")
        print(f"  plot: {plot}")
    print(f"\nRuns are in {out_dir}/; run `grokplug inspect {out_dir}/modular` for the detector's reasons.")
    return 0
