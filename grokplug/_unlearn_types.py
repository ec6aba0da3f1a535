"""What the unlearning hooks see: the job being run and what it produced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._types import CheckpointRef


@dataclass
class UnlearnContext:
    """One unlearning job: which method, from which start, on which model.

    ``extras`` is free for plugins to keep state between ``before_unlearn``, ``on_unlearn_step``
    and ``after_unlearn`` (key it by your plugin name).
    """

    method: str
    model: Any
    start: CheckpointRef | None = None
    seed: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    output_dir: Path | None = None
    accelerator: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnlearnResult:
    """The outcome of one unlearning job.

    ``trail`` holds the monitor's ``(step, forget_acc, retain_acc)`` points; ``steps_to_target`` is
    ``None`` when the target was never reached (and ``"n/a"`` semantics for one-shot methods are
    expressed by ``steps_applicable=False``).
    """

    model: Any
    method: str
    start: CheckpointRef | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    steps_to_target: int | None = None
    steps_applicable: bool = True
    total_steps: int | None = None
    stopped_early: bool = False
    trail: list[tuple[int, float, float]] = field(default_factory=list)
    output_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
