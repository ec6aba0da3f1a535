"""Strength sweeps for one-shot methods: the analogue of steps-to-target for a method that takes no steps."""

from __future__ import annotations

from typing import Any

from ._targets import resolve_target
from ._unlearn import registered_method, unlearn
from ._unlearning_method import UnlearningMethod
from ._validate import check_strengths
from .errors import UsageError

__all__ = ["sweep_strength"]


def sweep_strength(
    method: str | UnlearningMethod, values: list[float], *, target: str | float | None = "test",
    stop_at_target: bool = False, **kwargs: Any,
) -> dict[str, Any]:
    """For one-shot methods (``iterative = False``): run once per strength value, weakest first.

    Steps-to-target does not apply to a method that takes no optimizer steps; the analogue is the
    first strength (in the order given) whose result reaches the target forget accuracy. Returns the
    points (every scalar metric of each run, drops included), the start's metrics and that
    ``strength_to_target`` (``None`` if no value reaches it). ``stop_at_target`` skips the stronger
    values once one reaches the target (compare needs only the weakest).
    """
    name, method_obj = registered_method(method)
    knob = method_obj.strength_param
    if knob is None:
        raise UsageError(f"method {name!r} declares no strength parameter to sweep")
    values = check_strengths(values)
    hparams = dict(kwargs.pop("hparams", None) or {})
    points: list[dict[str, Any]] = []
    reached_at = None
    start: dict[str, Any] = {}
    for value in values:
        result = unlearn(method_obj, hparams={**hparams, knob: value}, target="none", **kwargs)
        start = result.metrics["start_metrics"]
        threshold = resolve_target(target, start, kwargs.get("retrain_metrics"))
        reached = threshold is not None and result.metrics["forget_acc"] <= threshold
        points.append({**_scalars(result.metrics), "strength": value, "reached": reached, "target_forget_acc": threshold})
        if reached and reached_at is None:
            reached_at = value
            if stop_at_target:
                break
    return {"method": name, "strength_param": knob, "strengths": values, "points": points,
            "strength_to_target": reached_at, "start_metrics": _scalars(start)}


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and not k.startswith("_") and k != "target_forget_acc"}
