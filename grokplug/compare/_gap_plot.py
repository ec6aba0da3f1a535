"""Fig. 1b: the θ_pre − θ_grok gap in steps to target for checkpoints across training (reruns unlearning per
checkpoint).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._rundir import RunDir
from ._figures import (
    FORGET_COLOUR,
    RETAIN_COLOUR,
    STARTS,
    TEST_COLOUR,
    PathLike,
    as_rundir,
    new_figure,
    percent_axis,
    save_figure,
)

__all__ = ["gap_points", "pick_steps", "plot_gap_over_training", "step_axis"]


def step_axis(ax: Any, steps: list[int]) -> None:
    """Log step axis; symmetric-log (linear up to the first positive step) when step 0 is present, as Fig. 1a."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    positive = [s for s in steps if s > 0]
    if not positive:
        return
    if min(steps) > 0:
        ax.set_xscale("log")
        return
    linthresh = min(positive)
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.4)
    decades = range(math.ceil(math.log10(linthresh)), math.floor(math.log10(max(positive))) + 1)
    ax.xaxis.set_major_locator(FixedLocator([0.0, *(10.0**d for d in decades)]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: "0" if x == 0 else f"$10^{{{round(math.log10(x))}}}$"))
    ax.set_xlim(-0.25 * linthresh, max(positive) * 1.05)


def pick_steps(steps: list[int], keep: Sequence[int], checkpoints: int | Sequence[int | str] | None) -> list[int]:
    """All retained steps, ``checkpoints`` of them spread evenly in log-step (always keeping θ_pre/θ_grok), or a list."""
    if checkpoints is None:
        return steps
    if not isinstance(checkpoints, int):
        return sorted({int(s) for s in checkpoints})
    if checkpoints >= len(steps):
        return steps
    grid = np.linspace(math.log1p(steps[0]), math.log1p(steps[-1]), max(checkpoints - len(keep), 2))
    chosen = {min(steps, key=lambda s: abs(math.log1p(s) - g)) for g in grid} | set(keep)
    return sorted(chosen)


def gap_points(
    run: PathLike, method: str, *, forget_rate: float = 0.15, seed: int = 0, checkpoints: int | Sequence[int | str] | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Unlearn with ``method`` from each chosen checkpoint (same split, fixed budget, no early stop)."""
    from .._unlearn import run_domain, unlearn
    from ..errors import DivergedError

    rd = as_rundir(run)
    options = run_domain(rd.path).compare_options(forget_rate)
    phases = {"pre": rd.pins.get("pre"), "grok": rd.pins.get("grok")}
    keep = [s for s in phases.values() if s is not None]
    if checkpoints is not None and not isinstance(checkpoints, int):  # phases by name -> steps
        named = {k: v for k, v in phases.items() if v is not None}
        checkpoints = [named.get(str(c), c) for c in checkpoints]
    points = []
    for step in pick_steps(rd.checkpoint_steps(), keep, checkpoints):
        try:
            result = unlearn(method, source=rd.path, start=str(step), seed=seed, target="none", hparams=hparams,
                             eval_every=10**9, **options)  # evaluate only at the start and the end
        except DivergedError as exc:  # one start blowing up is a finding, not a reason to lose the figure
            points.append({"step": step, "diverged": True, "error": str(exc)})
            continue
        start = result.metrics["start_metrics"]
        points.append({"step": step, "total_steps": result.total_steps,
                       **{f"start_{k}": start.get(k) for k in ("forget_acc", "retain_acc", "test_acc")},
                       **{k: result.metrics.get(k) for k in ("forget_acc", "retain_acc", "test_acc")}})
    return points


def plot_gap_over_training(
    run: PathLike | RunDir,
    path: PathLike,
    method: str = "ga",
    forget_rate: float = 0.15,
    seed: int = 0,
    checkpoints: int | Sequence[int | str] | None = None,
    *,
    hparams: Mapping[str, Any] | None = None,
    points: list[dict[str, Any]] | None = None,
) -> Path:
    """Fig. 1b: forget and retain accuracy after unlearning, from retained checkpoints across the run.

    ``checkpoints``: ``None`` = every retained checkpoint, an int = that many spread in log-step
    (θ_pre and θ_grok always included), or a list of steps / phase names. Each start gets the same
    method, split (``forget_rate``, ``seed``) and full budget (no early stop), so the gap RA − UA
    shows how unlearnable the model is at each point of training. The points are also written next
    to the PNG as ``<name>.json`` (pass them back as ``points=`` to redraw without rerunning).
    """
    from matplotlib.ticker import PercentFormatter

    rd = as_rundir(run)
    points = points if points is not None else gap_points(rd.path, method, forget_rate=forget_rate, seed=seed,
                                                           checkpoints=checkpoints, hparams=hparams)
    report = rd.report()
    fig = new_figure(9, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    points = sorted(points, key=lambda p: p["step"])
    done = [p for p in points if not p.get("diverged")]
    steps = [p["step"] for p in points]

    def series(key: str) -> np.ndarray:  # NaN at diverged starts, so lines break there instead of bridging them
        return np.array([np.nan if p.get("diverged") or p.get(key) is None else p[key] for p in points], dtype=float)

    for key, colour, label in (("retain_acc", RETAIN_COLOUR, "retain acc (RA)"), ("forget_acc", FORGET_COLOUR, "forget acc (UA, paper)"),
                               ("test_acc", TEST_COLOUR, "test acc")):
        top.plot(steps, series(key), "o-", color=colour, lw=1.6, ms=4, label=f"{label} after unlearning")
    top.plot(steps, series("start_test_acc"), ":", color=TEST_COLOUR, lw=1.2, label="test acc before unlearning")
    top.fill_between(steps, series("forget_acc"), series("retain_acc"), color=RETAIN_COLOUR, alpha=0.08, lw=0)
    bottom.plot(steps, series("retain_acc") - series("forget_acc"), "o-", color="k", lw=1.5, ms=4)
    diverged = [p["step"] for p in points if p.get("diverged")]
    if diverged:
        top.plot(diverged, [0.0] * len(diverged), "x", color="k", ms=9, mew=2, label="unlearning diverged (NaN)")
    bottom.axhline(0, color="0.5", lw=0.8)
    bottom.set_ylabel("gap RA − UA\n(pct. points)")
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0))
    bottom.grid(True, alpha=0.3)
    percent_axis(top)
    top.set_ylabel("accuracy")
    for ax in (top, bottom):
        for name, step in (("t_mem", report.t_mem if report else None), ("t_gen", report.t_gen if report else None)):
            if step is not None:
                ax.axvline(step, color="0.3", ls=":", lw=1)
                if ax is top:
                    ax.text(step, 0.5, f"{name} ", color="0.3", fontsize=8, rotation=90, ha="right", va="center",
                            transform=ax.get_xaxis_transform())
        for phase, (colour, label) in STARTS.items():
            if phase in rd.pins:
                ax.axvline(rd.pins[phase], color=colour, ls="--", lw=1.4, label=f"{label} (step {rd.pins[phase]})" if ax is top else None)
    step_axis(top, steps)
    bottom.set_xlabel("training step of the start checkpoint (log scale)")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    budget = max((p["total_steps"] for p in done), default=0)
    top.set_title(f"Fig. 1b · {rd.config.get('preset') or rd.path.name}: {method} from each checkpoint "
                  f"({forget_rate:.0%} forget, seed {seed}, {budget} updates each)", loc="left", fontsize=11)
    out = save_figure(fig, path)
    with atomic_path(Path(path).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"method": method, "forget_rate": forget_rate, "seed": seed, "points": points}, indent=2) + "\n")
        os.chmod(tmp, 0o644)
    return out
