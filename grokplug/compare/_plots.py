"""Figures for ``grokplug compare`` (inputs: the results.json dict of ``grokplug/compare/README.md``, and the run).

* Fig. 1a :func:`plot_training_phases`: train/val curves with phases, θ_pre and θ_grok (``grokplug._plot``);
* Fig. 1b :func:`plot_gap_over_training`: retain vs forget accuracy after unlearning from each checkpoint;
* Fig. 2 :func:`plot_convergence`: forget accuracy against unlearning steps, per forget rate and method;
* :func:`plot_seed_spread`: per-seed steps-to-target and final accuracies, θ_pre next to θ_grok.

θ_pre is always purple and θ_grok always green (the colours of Fig. 1a). Matplotlib runs through
the Agg canvas directly (no pyplot), so nothing opens a window or changes the global backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._paths import safe_filename
from .._plot import plot_run
from .._rundir import RunDir
from ._figures import (
    STARTS,
    PathLike,
    as_rundir,
    empty_figure,
    new_figure,
    percent_axis,
    save_figure,
)
from ._gap_plot import plot_gap_over_training

__all__ = ["plot_compare", "plot_convergence", "plot_gap_over_training", "plot_seed_spread", "plot_training_phases"]



# -- Fig. 1a ------------------------------------------------------------------------------------


def plot_training_phases(run: PathLike | RunDir, path: PathLike) -> Path:
    """Fig. 1a: the run's train/val accuracy (and loss) with its phases, θ_pre and θ_grok."""
    from .._phases import detect_phases

    rd = as_rundir(run)
    history = rd.history()
    report = rd.report() or detect_phases(history)
    return plot_run(history, report, path, title=f"Fig. 1a · {rd.config.get('preset') or rd.path.name}")


# -- Fig. 1b ------------------------------------------------------------------------------------


# -- Fig. 2 and seed spread (from results.json) ----------------------------------------------------


def _ok_cells(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in results.get("cells", []) if c.get("status") == "ok"]


def _grid(results: Mapping[str, Any], iterative_only: bool) -> tuple[list[str], list[float]]:
    cells = [c for c in _ok_cells(results) if c.get("iterative") or not iterative_only]
    config = results.get("config", {})
    methods = [m for m in config.get("methods", []) if any(c["method"] == m for c in cells)]
    rates = [r for r in config.get("forget_rates", []) if any(c["forget_rate"] == r for c in cells)]
    return methods, rates


def _forward_filled(trails: list[list[list[float]]], column: int) -> np.ndarray:
    """Seeds × steps array of one trail column, each seed held at its last value after its trail ends."""
    length = max(int(t[-1][0]) for t in trails) + 1
    out = np.full((len(trails), length), np.nan)
    for i, trail in enumerate(trails):
        for point in trail:
            out[i, int(point[0])] = point[column]
        for s in range(1, length):
            if np.isnan(out[i, s]):
                out[i, s] = out[i, s - 1]
    return out


def plot_convergence(results: Mapping[str, Any], path: PathLike, *, show_retain: bool = True) -> Path:
    """Fig. 2: forget accuracy vs unlearning steps, seed mean (line) and min–max band, θ_pre vs θ_grok.

    One panel per method (rows) and forget rate (columns); dashed lines: each start's mean primary
    target level, with the mean steps-to-target marked on it. Dotted lines: retain accuracy.
    """
    from matplotlib.ticker import MaxNLocator

    methods, rates = _grid(results, iterative_only=True)
    primary = results.get("config", {}).get("primary")
    fig = new_figure(max(5.2 * len(rates), 9.0), 3.6 * max(len(methods), 1) + 1.2)
    if not methods:
        empty_figure(fig, "no iterative method finished: nothing to plot")
        return save_figure(fig, path)
    axes = np.atleast_2d(fig.subplots(len(methods), len(rates), squeeze=False, sharey=True))
    for (row, method), (col, rate) in ((m, r) for m in enumerate(methods) for r in enumerate(rates)):
        ax = axes[row, col]
        n_seeds, counts = 0, []
        for start, (colour, label) in STARTS.items():
            cells = [c for c in _ok_cells(results) if (c["method"], c["start"], c["forget_rate"]) == (method, start, rate) and c.get("trail")]
            if not cells:
                continue
            n_seeds = max(n_seeds, len(cells))
            forget = _forward_filled([c["trail"] for c in cells], 1)
            x = np.arange(forget.shape[1])
            ax.plot(x, forget.mean(0), color=colour, lw=2, label=f"{label} forget acc")
            ax.fill_between(x, forget.min(0), forget.max(0), color=colour, alpha=0.18, lw=0)
            if show_retain:
                ax.plot(x, _forward_filled([c["trail"] for c in cells], 2).mean(0), color=colour, lw=1.2, ls=":", label=f"{label} retain acc")
            hits = [c["targets"][primary] for c in cells if primary in c.get("targets", {})]
            thresholds = [h["threshold"] for h in hits if h.get("threshold") is not None]
            if thresholds:
                level = float(np.mean(thresholds))
                ax.axhline(level, color=colour, ls="--", lw=1.1, alpha=0.8, label=f"{label} target {primary}")
                reached = [h["steps"] for h in hits if h.get("steps") is not None]
                counts.append(f"{label} {len(reached)}/{len(hits)}")
                if reached:
                    ax.plot([np.mean(reached)], [level], "v", color=colour, ms=8, mec="white",
                            label=f"{label} mean steps to target (seeds reaching it)")
        reach = f"\nreached {primary}: {', '.join(counts)}" if counts else ""
        ax.set_title(f"{method} · {rate:.0%} forget · {n_seeds} seeds{reach}", fontsize=10)
        percent_axis(ax)
        if col == 0:
            ax.set_ylabel("accuracy")
        if row == len(methods) - 1:
            ax.set_xlabel("unlearning steps (optimizer updates)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles: dict[str, Any] = {}
    for ax in axes.flat:  # one legend for the figure; labels repeat across panels
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=2 if len(rates) < 2 else 4, fontsize=8, frameon=False)
    preset = results.get("run", {}).get("preset") or ""
    fig.suptitle(f"Fig. 2 · {preset}: forget accuracy (paper's UA; lower = more forgotten) during unlearning\n"
                 "solid: mean over seeds, band: min–max over seeds, dotted: retain accuracy, dashed: target level", fontsize=11)
    return save_figure(fig, path)


_SPREAD = (("steps", "steps to primary target"), ("forget_acc", "final forget acc"),
           ("retain_acc", "final retain acc"), ("test_acc", "final test acc"))


def _spread_values(cell: Mapping[str, Any], key: str, primary: str | None) -> tuple[float | None, bool]:
    """(value, censored) for one cell: steps to the primary target (budget when never reached) or a final metric."""
    if key != "steps":
        return (cell.get("final") or {}).get(key), False
    if not cell.get("iterative"):
        return None, False
    hit = (cell.get("targets") or {}).get(primary or "", {})
    if hit.get("steps") is not None:
        return float(hit["steps"]), False
    return float(cell.get("total_steps") or 0), True


def plot_seed_spread(results: Mapping[str, Any], path: PathLike) -> Path:
    """Per-seed steps-to-target and final accuracies: dots per seed, bar at the seed mean, the same seed joined.

    Rows: forget rates; columns: steps to the primary target, final forget / retain / test accuracy.
    A hollow triangle is a seed that never reached the target (drawn at its budget: a lower bound).
    """
    from matplotlib.ticker import MaxNLocator

    methods, rates = _grid(results, iterative_only=False)
    primary = results.get("config", {}).get("primary")
    fig = new_figure(3.4 * len(_SPREAD) + 1.5, 3.2 * max(len(rates), 1) + 0.6)
    if not methods:
        empty_figure(fig, "no finished cells: nothing to plot")
        return save_figure(fig, path)
    axes = fig.subplots(len(rates), len(_SPREAD), squeeze=False)
    cells = _ok_cells(results)
    for row, rate in enumerate(rates):
        for col, (key, title) in enumerate(_SPREAD):
            ax = axes[row, col]
            for i, method in enumerate(methods):
                by_seed: dict[str, dict[Any, float]] = {}
                for start, (colour, label) in STARTS.items():
                    x0 = i + (-0.18 if start == "pre" else 0.18)
                    group = sorted((c for c in cells if (c["method"], c["start"], c["forget_rate"]) == (method, start, rate)),
                                   key=lambda c: c["seed"])
                    vals = [(c["seed"], value, censored) for c in group
                            for value, censored in [_spread_values(c, key, primary)] if value is not None]
                    for j, (seed, value, censored) in enumerate(vals):
                        xj = x0 + 0.05 * (j - (len(vals) - 1) / 2)
                        ax.plot([xj], [value], "^" if censored else "o", ms=6, color=colour, mfc="none" if censored else colour,
                                label=label if (i, j) == (0, 0) else None)
                        by_seed.setdefault(start, {})[seed] = value
                    if vals:
                        ax.hlines(np.mean([v[1] for v in vals]), x0 - 0.12, x0 + 0.12, color=colour, lw=2.5)
                for seed in set(by_seed.get("pre", {})) & set(by_seed.get("grok", {})):
                    ax.plot([i - 0.18, i + 0.18], [by_seed["pre"][seed], by_seed["grok"][seed]], color="0.6", lw=0.7, zorder=0)
                if key == "steps" and not by_seed:
                    ax.text(i, 0.5, "one-shot\n(no steps)", ha="center", va="center", fontsize=7, color="0.4",
                            transform=ax.get_xaxis_transform())
            ax.set_xticks(range(len(methods)), methods)
            ax.set_xlim(-0.6, len(methods) - 0.4)
            if key == "steps":
                ax.set_ylabel("optimizer updates")
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_ylim(bottom=0)
                ax.grid(True, axis="y", alpha=0.3)
            else:
                percent_axis(ax)
            ax.set_title(f"{title} · {rate:.0%} forget", fontsize=10)
            if (row, col) == (0, 1):  # a final-accuracy panel always has points (steps may be one-shot only)
                ax.legend(fontsize=8, loc="best")
    preset = results.get("run", {}).get("preset") or ""
    fig.suptitle(f"Seed spread · {preset}: dots = seeds, bar = seed mean, grey = same seed; "
                 f"hollow ▲ = target {primary} never reached (budget, a lower bound)", fontsize=11)
    return save_figure(fig, path)


# -- all of them ---------------------------------------------------------------------------------


def plot_compare(
    results: Mapping[str, Any], run: PathLike | RunDir | None, out_dir: PathLike, *, gap: bool = True, gap_checkpoints: int | None = 8,
) -> list[Path]:
    """Write the comparison's figures into ``out_dir``; returns their paths.

    Fig. 1a needs the run; Fig. 1b (``gap=True``) also reruns the first iterative method of the
    comparison from ``gap_checkpoints`` checkpoints (seed 0, the first forget rate): a few seconds each.
    """
    out = Path(out_dir)
    paths = []
    if run is not None:
        paths.append(plot_training_phases(run, out / "fig1a_training.png"))
    paths.append(plot_convergence(results, out / "fig2_convergence.png"))
    paths.append(plot_seed_spread(results, out / "fig_seed_spread.png"))
    methods, rates = _grid(results, iterative_only=True)
    if gap and run is not None and methods and rates:
        hparams = (results.get("config", {}).get("hparams") or {}).get(methods[0])
        paths.append(plot_gap_over_training(run, out / f"fig1b_gap_{safe_filename(methods[0])}.png", methods[0], float(rates[0]),
                                            int((results.get("config", {}).get("seeds") or [0])[0]), gap_checkpoints, hparams=hparams))
    return paths
