"""Functions of the public API that go through hooks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._detect import GrokReport
from ._rundir import RunDir
from .plugins import get_plugin_manager


def detect_phases(
    history: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
    *,
    checkpoint_steps: Iterable[int] | None = None,
    **params: Any,
) -> GrokReport:
    """Classify a run (grokking / comprehension / memorization / confusion) and choose θ_pre, θ_grok.

    ``history`` is a list of eval records, or a run directory (its history and kept checkpoints are
    used). Goes through ``grokplug_detect_phases``, so an installed detector plugin takes over.
    """
    if isinstance(history, (str, os.PathLike)):
        run = RunDir(history)
        if checkpoint_steps is None:
            checkpoint_steps = run.checkpoint_steps()
        params = {**run.run_info.get("detector_params", {}), **params}
        history = run.history()
    steps = None if checkpoint_steps is None else sorted(set(checkpoint_steps))
    return get_plugin_manager().detect_phases(list(history), params, steps)
