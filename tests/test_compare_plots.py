"""grokplug.compare._plots: every figure is a readable PNG with the θ_pre / θ_grok colours drawn."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grokplug._plot import GROK_COLOUR, PRE_COLOUR
from grokplug.compare._plots import (
    plot_compare,
    plot_convergence,
    plot_gap_over_training,
    plot_seed_spread,
    plot_training_phases,
)


def synthetic_results(methods: tuple[str, ...] = ("ga", "ssd"), rates: tuple[float, ...] = (0.15, 0.5), budget: int = 12) -> dict[str, Any]:
    """A small results dict in the grokplug.compare/1 schema: θ_grok forgets faster; ssd is one-shot."""
    cells: list[dict[str, Any]] = []
    for method in methods:
        iterative = method != "ssd"
        for start in ("pre", "grok"):
            for seed in (0, 1, 2):
                for rate in rates:
                    speed = (0.1 if start == "pre" else 0.4) * (1 + 0.1 * seed)
                    trail = [[s, math.exp(-speed * s), 1.0 - 0.01 * s] for s in range(budget + 1)] if iterative else []
                    steps = next((s for s, f, _ in trail if f <= 0.5), None)
                    if start == "pre" and seed == 2:  # one censored seed: never reaches the target
                        trail = [[s, 1.0 - 0.02 * s, 1.0] for s in range(budget + 1)] if iterative else []
                        steps = None
                    cells.append({
                        "key": f"{method}__{start}__seed{seed}__rate{rate}", "status": "ok", "method": method,
                        "start": start, "seed": seed, "forget_rate": rate, "iterative": iterative,
                        "total_steps": budget if iterative else 0,
                        "start_metrics": {"forget_acc": 1.0, "retain_acc": 1.0, "test_acc": 0.3 if start == "pre" else 0.95},
                        "final": {"forget_acc": trail[-1][1] if trail else 0.4, "retain_acc": trail[-1][2] if trail else 0.9,
                                  "test_acc": 0.25 if start == "pre" else 0.9, "retain_drop": 0.05, "test_drop": 0.02},
                        "at_target": None,
                        "targets": {"frac:0.5": {"threshold": 0.5, "steps": steps, "reached": steps is not None,
                                                 "met_at_start": False, "censored": steps is None}} if iterative else {},
                        "flags": [] if iterative else ["one_shot"], "trail": trail,
                    })
    cells.append({"key": "ga__pre__seed7__rate0.15", "status": "diverged", "method": "ga", "start": "pre", "seed": 7,
                  "forget_rate": rates[0], "iterative": True, "trail": [], "targets": {}, "final": None})
    return {
        "schema": "grokplug.compare/1",
        "run": {"preset": "synthetic", "label": "grokking", "t_mem": 50, "t_gen": 580},
        "config": {"methods": list(methods), "seeds": [0, 1, 2], "forget_rates": list(rates), "targets": ["frac:0.5"],
                   "primary": "frac:0.5", "hparams": {}},
        "targets": [{"spec": "frac:0.5", "kind": "fraction", "level": 0.5, "primary": True, "symmetric": True}],
        "cells": cells, "aggregates": [], "pairs": [], "summary": [], "flags": [], "plots": [], "analysis": None,
    }


def _read(path: Path, min_size: tuple[int, int] = (300, 400)) -> np.ndarray:
    """The PNG as an array; checks it is a real, reasonably sized image."""
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 5_000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    return image


def _has_colour(image: np.ndarray, hex_colour: str, min_pixels: int = 30) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    close = np.abs(image[..., :3] - rgb).max(axis=-1) < 0.03
    return int(close.sum()) >= min_pixels


def test_convergence_and_seed_spread(tmp_path: Path) -> None:
    results = synthetic_results()
    conv = _read(plot_convergence(results, tmp_path / "fig2.png"))
    spread = _read(plot_seed_spread(results, tmp_path / "spread.png"))
    for image in (conv, spread):
        assert _has_colour(image, PRE_COLOUR) and _has_colour(image, GROK_COLOUR)  # both starts drawn, in the shared colours
    # two forget rates -> two panels side by side: wider than a one-panel figure
    single = _read(plot_convergence(synthetic_results(methods=("ga",), rates=(0.15,)), tmp_path / "one.png"))
    assert conv.shape[1] > single.shape[1]


def test_plots_without_iterative_cells(tmp_path: Path) -> None:
    results = synthetic_results(methods=("ssd",))
    image = _read(plot_convergence(results, tmp_path / "fig2.png"))
    assert not _has_colour(image, PRE_COLOUR)  # nothing to draw: a labelled empty figure, not a crash
    assert _has_colour(_read(plot_seed_spread(results, tmp_path / "spread.png")), GROK_COLOUR)


def test_training_phases_and_compare(tmp_path: Path, modular_run_dir: Path) -> None:
    fig1a = _read(plot_training_phases(modular_run_dir, tmp_path / "fig1a.png"))
    assert _has_colour(fig1a, PRE_COLOUR) and _has_colour(fig1a, GROK_COLOUR)
    paths = plot_compare(synthetic_results(), modular_run_dir, tmp_path / "out", gap=False)
    assert [p.name for p in paths] == ["fig1a_training.png", "fig2_convergence.png", "fig_seed_spread.png"]
    for path in paths:
        _read(path)


def test_gap_over_training_on_modular(tmp_path: Path, modular_run_dir: Path) -> None:
    from grokplug import RunDir

    run = RunDir(modular_run_dir)
    out = plot_gap_over_training(modular_run_dir, tmp_path / "fig1b.png", "ga", 0.15, 0,
                                 checkpoints=[run.pins["pre"], "grok"], hparams={"lr": 0.01, "max_steps": 3})  # a step and a phase
    _read(out)
    points = json.loads(out.with_suffix(".json").read_text())["points"]
    assert [p["step"] for p in points] == [run.pins["pre"], run.pins["grok"]]
    for p in points:
        assert p["total_steps"] == 3  # the fixed budget, no early stop
        assert all(0.0 <= p[k] <= 1.0 for k in ("forget_acc", "retain_acc", "test_acc", "start_forget_acc"))
    at = {p["step"]: p for p in points}
    assert at[run.pins["grok"]]["start_test_acc"] > 0.9 > 0.5 > at[run.pins["pre"]]["start_test_acc"]  # grokked vs memorized
    # redrawing from the saved points reruns nothing and gives the same figure size
    again = plot_gap_over_training(modular_run_dir, tmp_path / "again.png", "ga", points=points)
    assert _read(again).shape == _read(out).shape


@pytest.mark.parametrize("name", ["fig2.png", "sub/dir/fig2.png"])
def test_plot_writes_atomically_into_new_dirs(tmp_path: Path, name: str) -> None:
    path = plot_convergence(synthetic_results(), tmp_path / name)
    assert path == tmp_path / name and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    assert path.stat().st_mode & 0o777 == 0o644
