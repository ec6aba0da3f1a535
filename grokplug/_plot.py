"""Plot a run's accuracy (and loss) curves with its grokking phases, θ_pre and θ_grok.

The layout follows Fig. 1a of "Grokked Models are Better Unlearners": accuracy against a log step
axis, the memorization plateau, the transition and the grokked phase shaded, and the two
checkpoints marked. Matplotlib is used through the Agg canvas directly (no pyplot), so plotting
never opens a window, never switches the global backend and is safe off the main thread.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._curve_rules import parse_record
from ._detect import GrokReport

__all__ = ["plot_run"]

_TRAIN, _VAL = "#1f77b4", "#d62728"
#: the colours of θ_pre and θ_grok in every figure
PRE_COLOUR, GROK_COLOUR = "#6a3d9a", "#1b7837"
_PRE, _GROK = PRE_COLOUR, GROK_COLOUR  # the old private names
_BANDS = {  # phase -> (colour, legend label)
    "plateau": ("#9e9e9e", "memorization plateau"),
    "transition": ("#ff9f1c", "transition"),
    "grokked": ("#2ca02c", "grokked"),
    "generalized": ("#2ca02c", "generalized"),  # after t_gen in a run without a delay (comprehension)
}


def plot_run(
    history: Iterable[Mapping[str, Any]],
    report: GrokReport | Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw ``history`` with the phases of ``report`` into a PNG at ``path`` (written atomically).

    Top panel: train and val accuracy against the step (log axis; symmetric-log when the history
    has step 0, so that it stays visible), phase bands and markers for θ_pre and θ_grok. Bottom panel (only when the history has losses):
    train and val loss on a log scale. Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, PercentFormatter

    rep = report if isinstance(report, GrokReport) else GrokReport.from_dict(report)
    rows = [(parsed, record) for record in history if (parsed := parse_record(record)) is not None]
    rows.sort(key=lambda row: row[0][0])
    steps = [parsed[0] for parsed, _ in rows]
    losses = {key: [_positive(record.get(key)) for _, record in rows] for key in ("train_loss", "val_loss")}
    has_loss = any(v is not None for values in losses.values() for v in values)

    fig = Figure(figsize=(9, 7 if has_loss else 4.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 if has_loss else 1, 1, height_ratios=[2.2, 1] if has_loss else [1])
    acc = fig.add_subplot(grid[0])
    panels = [acc] + ([fig.add_subplot(grid[1], sharex=acc)] if has_loss else [])
    positive = [s for s in steps if s > 0]
    xs, shown = steps, list(range(len(steps)))

    acc.plot(xs, [rows[i][0][1] for i in shown], color=_TRAIN, lw=1.8, label="train acc")
    acc.plot(xs, [rows[i][0][2] for i in shown], color=_VAL, lw=1.8, label="val acc")
    acc.set_ylim(-0.03, 1.07)
    acc.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    acc.set_ylabel("accuracy")
    acc.grid(True, which="major", alpha=0.3)
    if not rows:
        acc.text(0.5, 0.5, "no eval records", transform=acc.transAxes, ha="center", va="center", color="0.4")
        acc.set_xticks([])

    handles: list[Any] = list(acc.get_legend_handles_labels()[0])
    bands = _bands(rep, steps[-1] if steps else 0)
    for phase, start, end in bands:
        colour, label = _BANDS[phase]
        for ax in panels:
            ax.axvspan(start, end, color=colour, alpha=0.16, lw=0, zorder=0)
        unfinished = phase == "transition" and rep.t_gen is None
        handles.append(Patch(color=colour, alpha=0.35, label=f"{label} ({start}–{'…' if unfinished else end})"))
    if rep.t_mem is not None:
        for ax in panels:
            ax.axvline(rep.t_mem, color="0.35", lw=0.9, ls=":", zorder=1)

    val_at = {parsed[0]: parsed[2] for parsed, _ in rows}
    for name, step, colour, dy in (("θ_pre", rep.pre_step, PRE_COLOUR, 40), ("θ_grok", rep.grok_step, GROK_COLOUR, -44)):
        if step is None:
            continue
        for ax in panels:
            ax.axvline(step, color=colour, lw=1.4, ls="--", zorder=3)
        y = val_at.get(step, 0.5)
        acc.plot([step], [y], "o", color=colour, ms=7, zorder=4, label=f"{name} (step {step})")
        right_half = _position(step, xs) > 0.6
        acc.annotate(
            f"{name}\nstep {step}\nval {100 * y:.1f}%",
            xy=(step, y), xytext=(-12 if right_half else 12, dy if y < 0.6 else -abs(dy)), textcoords="offset points",
            ha="right" if right_half else "left", va="center", fontsize=9, color=colour,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": colour, "alpha": 0.9},
            arrowprops={"arrowstyle": "-", "color": colour, "lw": 1},
            zorder=5,
        )
        handles.append(acc.get_lines()[-1])

    if has_loss:
        ax_loss = panels[1]
        for key, colour in (("train_loss", _TRAIN), ("val_loss", _VAL)):
            pts = [(steps[i], value) for i, value in enumerate(losses[key]) if value is not None]
            if pts:
                ax_loss.plot(*zip(*pts, strict=True), color=colour, lw=1.5, label=key.replace("_", " "))
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("loss")
        ax_loss.grid(True, which="major", alpha=0.3)
        ax_loss.legend(loc="best", fontsize=8, framealpha=0.9)
        acc.tick_params(labelbottom=False)
    if positive and min(steps) > 0:
        acc.set_xscale("log")
    elif positive:  # linear between 0 and the first positive step, logarithmic beyond
        linthresh = min(positive)
        acc.set_xscale("symlog", linthresh=linthresh, linscale=0.4)
        decades = range(math.ceil(math.log10(linthresh)), math.floor(math.log10(max(positive))) + 1)
        acc.xaxis.set_major_locator(FixedLocator([0.0, *(10.0**d for d in decades)]))
        acc.xaxis.set_major_formatter(FuncFormatter(lambda x, _: "0" if x == 0 else f"$10^{{{round(math.log10(x))}}}$"))
        acc.set_xlim(min(steps) - 0.25 * linthresh, max(positive) * 1.05)  # pad: a marker at step 0 stays visible
    panels[-1].set_xlabel("step" + (" (log scale)" if positive else ""))

    acc.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ratio = f", grok ratio R = {rep.grok_ratio:.1f}" if rep.grok_ratio is not None else ""
    progress = " (in progress)" if rep.in_progress else ""
    acc.set_title(f"{title + ': ' if title else ''}{rep.label}{progress}{ratio}", fontsize=12, loc="left")

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the plot is an ordinary output file
        os.replace(tmp, target)  # readers never see a half-written PNG
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _positive(value: Any) -> float | None:
    """A loss worth drawing on a log axis, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _bands(rep: GrokReport, last_step: int) -> list[tuple[str, int, int]]:
    """(phase, start, end) spans that exist for this report; nothing for phases it did not reach."""
    if rep.t_mem is None:
        return []  # confusion: train never fitted
    if rep.t_onset is None:  # no val gain: a plateau to the end only when val stayed low
        return [("plateau", rep.t_mem, last_step)] if rep.label == "memorization" else []
    out = [("plateau", rep.t_mem, rep.t_onset), ("transition", rep.t_onset, rep.t_gen or last_step)]
    if rep.t_gen is not None:
        out.append(("grokked" if rep.grokked else "generalized", rep.t_gen, last_step))
    return out


def _position(step: int, xs: list[int]) -> float:
    """Roughly where ``step`` sits across the (log) x range, 0..1, to keep annotations inside the axes."""
    lo, hi = (math.log1p(max(x, 0)) for x in (xs[0], xs[-1])) if xs else (0.0, 0.0)
    return 0.5 if hi <= lo else (math.log1p(max(step, 0)) - lo) / (hi - lo)
