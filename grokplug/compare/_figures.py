"""The pieces every compare figure shares: the figure, its saving, percent axes, the two starts' colours and
labels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_path
from .._plot import GROK_COLOUR, PRE_COLOUR
from .._rundir import RunDir

PathLike = str | os.PathLike[str]
#: the colours of the forget, retain and test accuracies in every compare figure
FORGET_COLOUR, RETAIN_COLOUR, TEST_COLOUR = "#d62728", "#1f77b4", "#7f7f7f"

__all__ = ["FORGET_COLOUR", "RETAIN_COLOUR", "TEST_COLOUR", "PathLike", "STARTS", "as_rundir", "empty_figure", "new_figure", "percent_axis", "save_figure"]


STARTS = {"pre": (PRE_COLOUR, "θ_pre"), "grok": (GROK_COLOUR, "θ_grok")}


def new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: PathLike) -> Path:
    """Write ``fig`` as a PNG atomically (readers never see half a file); returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a plot is an ordinary output file
    return Path(path)


def percent_axis(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(-0.03, 1.05)
    ax.grid(True, alpha=0.3)


def as_rundir(run: PathLike | RunDir) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir(run)


def empty_figure(fig: Any, text: str) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, text, ha="center", va="center", color="0.4", transform=ax.transAxes)
    ax.set_axis_off()
