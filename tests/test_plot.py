"""plot_run: one PNG per run, for every label, written atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from grokplug._detect import detect_phases_builtin
from grokplug._plot import plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


def trace(t_fit: float, surges: list[tuple[float, float, float]], *, v0: float = 0.0, last: int = 3000,
          losses: bool = True) -> list[dict[str, Any]]:
    """Train fits around ``t_fit``; val = ``v0`` plus one logistic per (center, width, amplitude)."""
    out = []
    for step in range(0, last + 1, 25):
        train = _logistic((step - 0.75 * t_fit) / (0.06 * t_fit))
        val = min(1.0, v0 + sum(a * _logistic((step - c) / w) for c, w, a in surges))
        record: dict[str, Any] = {"step": step, "train_acc": train, "val_acc": val}
        if losses:
            record.update(train_loss=3 * (1 - train) ** 2 + 1e-5, val_loss=4 * (1 - val) + 0.05)
        out.append(record)
    return out


RUNS = {
    "grokking": trace(150, [(1150, 60, 0.97)]),
    "comprehension": trace(100, [(40, 10, 0.93)]),
    "memorization": trace(150, [], v0=0.003),
    "memorization-in-progress": trace(150, [(1150, 60, 0.97)], last=1200),  # unfinished transition
    "confusion": trace(1e9, [(100, 20, 0.1)]),
}


def assert_single_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind


@pytest.mark.parametrize("name", sorted(RUNS))
def test_plot_for_every_label(tmp_path: Path, name: str) -> None:
    history = RUNS[name]
    report = detect_phases_builtin(history)
    assert report.label == name.split("-")[0]
    assert report.in_progress == name.endswith("in-progress")
    out = plot_run(history, report, tmp_path / f"{name}.png", title=name)
    assert out == tmp_path / f"{name}.png"
    assert_single_png(out)


def test_plot_without_losses_and_from_a_report_dict(tmp_path: Path) -> None:
    history = trace(150, [(1150, 60, 0.97)], losses=False)
    report = detect_phases_builtin(history).to_dict()
    out = plot_run(history, report, str(tmp_path / "nested" / "dir" / "run.png"))
    assert_single_png(out)


@pytest.mark.parametrize("history", [[], [{"step": 0, "train_acc": 0.1, "val_acc": 0.1}]])
def test_plot_of_empty_or_tiny_history(tmp_path: Path, history: list[dict[str, Any]]) -> None:
    out = plot_run(history, detect_phases_builtin(history), tmp_path / "tiny.png")
    assert_single_png(out)


def test_failed_write_leaves_the_old_plot_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    history = RUNS["grokking"]
    report = detect_phases_builtin(history)
    target = plot_run(history, report, tmp_path / "run.png")
    before = target.read_bytes()

    def broken(self: Figure, *args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plot_run(history, report, target)
    assert target.read_bytes() == before
    assert_single_png(target)
