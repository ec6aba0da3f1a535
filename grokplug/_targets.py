"""Unlearning targets: a spec (``0.2``, ``"test"``, ``"retrain"``, ``"frac:F"``, ``"none"``) → a forget-accuracy threshold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import UsageError

__all__ = ["resolve_target"]


def resolve_target(spec: str | float | None, start: Mapping[str, float], retrain: Mapping[str, float] | None = None) -> float | None:
    """Turn a target spec into a forget-accuracy threshold (reached when forget_acc ≤ threshold).

    * a number in [0, 1]: that forget accuracy;
    * ``"test"``: the start model's test accuracy (forget set looks like unseen data);
    * ``"retrain"``: the forget accuracy of a model retrained on retain only (``retrain`` metrics;
      :func:`grokplug.unlearn` computes them for preset runs);
    * ``"frac:F"``: F × the start model's forget accuracy (meaningful for both starts);
    * ``None`` / ``"none"``: no target (run the method's full budget).
    """
    if spec is None or spec == "none":
        return None
    if isinstance(spec, (int, float)) or _is_number(spec):
        value = float(spec)
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"target forget accuracy must lie in [0, 1], got {value}")
        return value
    if spec == "test":
        return float(start["test_acc"])
    if spec == "retrain":
        if retrain is None:
            raise UsageError("target 'retrain' needs a retrained-on-retain reference (pass retrain_metrics=)")
        return float(retrain["forget_acc"])
    if isinstance(spec, str) and spec.startswith("frac:") and _is_number(spec[5:]):
        fraction = float(spec[5:])
        if not 0.0 < fraction <= 1.0:
            raise UsageError(f"target fraction must lie in (0, 1], got {fraction}")
        return fraction * float(start["forget_acc"])
    raise UsageError(f"unknown target {spec!r}; use a number in [0,1], 'test', 'retrain', 'frac:F' or 'none'")


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
