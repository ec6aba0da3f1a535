"""One-line advice after an unlearning run: say so when forget accuracy barely moved, and name the knob.

Domain-neutral and free of side effects, so any entry point (the CLI today, the orchestrator later)
can call :func:`barely_moved_note` with the start and final forget accuracy and print what it returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: a drop in forget accuracy smaller than this (absolute, on a 0–1 scale) counts as "barely moved"
BARELY_MOVED = 0.02

_STEP_KNOBS = ("lr", "learning_rate")
_LENGTH_KNOBS = ("epochs", "num_train_epochs")


def _first(params: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in params), None)


def barely_moved_note(
    method: Any, start_forget_acc: float | None, final_forget_acc: float | None, params: Mapping[str, Any],
    *, threshold: float = BARELY_MOVED,
) -> str | None:
    """``None``, or one line when forget accuracy fell by less than ``threshold``, naming the knob to turn.

    Iterative methods: the step size (``lr``/``learning_rate``) and the length (``epochs``); one-shot
    methods: their ``strength_param`` and ``--sweep``. Values are quoted from ``params`` (the resolved
    hyperparameters), so the line says where the run stood.
    """
    if start_forget_acc is None or final_forget_acc is None:
        return None
    if not (math.isfinite(start_forget_acc) and math.isfinite(final_forget_acc)):
        return None
    drop = start_forget_acc - final_forget_acc
    if drop >= threshold:
        return None
    name = getattr(method, "name", None) or type(method).__name__
    moved = f"forget accuracy barely moved ({start_forget_acc:.3f} → {final_forget_acc:.3f})"
    if not getattr(method, "iterative", True):
        knob = getattr(method, "strength_param", None)
        if knob and knob in params:
            return (f"note: {moved}; {name} is one-shot: its strength is {knob} (now {params[knob]:g}; the method's "
                    f"docs say which way is stronger), try several with --sweep V1,V2,...")
        return f"note: {moved}; {name} is one-shot and declares no strength knob to turn"
    step, length = _first(params, _STEP_KNOBS), _first(params, _LENGTH_KNOBS)
    knobs = [f"--set {k}=<larger than {params[k]:g}>" for k in (step, length) if k is not None and isinstance(params[k], (int, float))]
    if not knobs:
        return f"note: {moved}; {name} names no learning-rate or epochs knob to turn"
    return f"note: {moved}; turn up {name}'s {' or '.join(knobs)}"


def note_for_result(method: Any, info: Mapping[str, Any]) -> str | None:
    """:func:`barely_moved_note` from a result dict (``grokplug unlearn --json``'s shape); none if the target held at the start."""
    if info.get("met_at_start"):
        return None
    start = (info.get("start_metrics") or {}).get("forget_acc")
    return barely_moved_note(method, start, info.get("forget_acc"), info.get("hparams") or {})
