"""Scripted training runs for tests: a real tracker and real checkpoints, metrics from a formula."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

import grokplug


def scripted_grokking(step: int) -> dict[str, float]:
    """A clean grokking trace: train fits by ~100, val jumps after ~1000."""
    train = min(1.0, 0.1 + step / 100)
    val = 0.05 if step < 1000 else min(0.97, 0.05 + (step - 1000) / 400)
    return {"train_acc": train, "val_acc": val, "train_loss": max(1e-4, 1.0 - step / 120), "val_loss": 3.0 - 2 * val}


def scripted_memorization(step: int) -> dict[str, float]:
    """Train fits, validation never rises."""
    return {"train_acc": min(1.0, 0.1 + step / 100), "val_acc": 0.04, "train_loss": max(1e-4, 1.0 - step / 120)}


def run_scripted(
    run_dir: Any,
    steps: Iterable[int] = range(0, 3001, 50),
    tracker_kwargs: dict[str, Any] | None = None,
    crash_at: int | None = None,
    metrics: Callable[[int], dict[str, float]] = scripted_grokking,
) -> tuple[grokplug.GrokTracker, torch.nn.Module]:
    """Drive a GrokTracker through ``steps``; ``crash_at`` raises KeyboardInterrupt there (a crash)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = grokplug.GrokTracker(run_dir, config={"task": "scripted"}, seed=0, **(tracker_kwargs or {}))
    with tracker:
        start = tracker.restore(model, opt)
        for step in steps:
            if step < start or (start and step == start):
                continue
            with torch.no_grad():
                model.weight.add_(0.01)  # every checkpoint differs
            if step == crash_at:
                raise KeyboardInterrupt
            tracker.log_eval(step, model=model, optimizer=opt, **metrics(step))
    return tracker, model
