"""Built-in phase detector (the rules of ``grokplug/_detect.py``). Runs last, so a plugin can replace it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grokplug._detect import GrokReport, detect_phases_builtin

from . import hookimpl


@hookimpl(trylast=True)
def grokplug_detect_phases(
    history: Sequence[Mapping[str, Any]], params: Mapping[str, Any], checkpoint_steps: Sequence[int] | None
) -> GrokReport:
    steps = None if checkpoint_steps is None else set(checkpoint_steps)
    return detect_phases_builtin(history, checkpoint_steps=steps, **dict(params))
