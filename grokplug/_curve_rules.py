"""The phase detector's parameters and the rules it reads a validation curve with (reference/grokking.md §4):
records, the trailing median, thresholds relative to the level at memorization, the first crossing held for k
evals, the fitted late rise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UsageError

__all__ = ["DEFAULT_PARAMS", "PRE_METRICS", "first_held", "fitted_rise", "fraction_of", "median", "parse_record", "resolve_params", "thresholds", "trend_start"]


DEFAULT_PARAMS: dict[str, Any] = {
    "smooth_w": 3,  # trailing-median window, in evals
    "tau_mem": 0.99,  # train acc that counts as memorized
    "k": 3,  # consecutive evals every crossing must hold (hysteresis)
    "gain_min": 0.20,  # minimum val gain after t_mem, G = v_max - v(t_mem)
    "onset_frac": 0.10,  # t_onset: val first holds v(t_mem) + onset_frac * G
    "gen_frac": 0.90,  # t_gen: val first holds v(t_mem) + gen_frac * G
    "tau_gen_abs": None,  # optional absolute t_gen level; min(abs, relative) is used
    "ratio_min": 2.0,  # grok ratio t_gen / t_mem needed for "grokking"
    "gap_min_evals": 5,  # ... and this many evals between t_mem and t_gen
    "patience": 10,  # early-stopping patience (evals) for θ_pre
    "min_delta": 1e-3,  # early-stopping improvement threshold
    "grok_margin": 0.01,  # θ_grok: val >= v_max - grok_margin
    "pre_metric": "val_acc",  # early-stop θ_pre watches smoothed val_acc or val_loss
    "drop_min": 0.08,  # shape: val falls this far below the early peak ...
    "rise_min": 0.10,  # ... and later holds this far above it
}


PRE_METRICS = ("val_acc", "val_loss")


_INT_MIN = {"smooth_w": 1, "k": 1, "gap_min_evals": 0, "patience": 1}


_POSITIVE = {"gain_min", "onset_frac", "gen_frac"}  # zero would put a threshold at v(t_mem) itself


def resolve_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The effective parameters: :data:`DEFAULT_PARAMS` overridden by ``params``, validated."""
    given = dict(params or {})
    unknown = sorted(set(given) - set(DEFAULT_PARAMS))
    if unknown:
        valid = ", ".join(DEFAULT_PARAMS)
        raise UsageError(f"unknown detector parameter(s): {', '.join(unknown)}; valid names: {valid}")
    out = {**DEFAULT_PARAMS, **given}
    for name, value in out.items():
        if name == "tau_gen_abs" and value is None:
            continue
        if name == "pre_metric":
            if value not in PRE_METRICS:
                raise UsageError(f"detector parameter pre_metric must be one of {', '.join(PRE_METRICS)}, not {value!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"detector parameter {name} must be a finite number, not {value!r}")
        if name in _INT_MIN:
            if value != int(value) or value < _INT_MIN[name]:
                raise UsageError(f"detector parameter {name} must be an integer >= {_INT_MIN[name]}, not {value!r}")
            out[name] = int(value)
            continue
        upper = math.inf if name == "ratio_min" else 1.0
        if not 0.0 <= value <= upper or (name in _POSITIVE and value == 0):
            low = "(0" if name in _POSITIVE else "[0"
            raise UsageError(f"detector parameter {name} must lie in {low}, {upper:g}], not {value!r}")
        out[name] = float(value)
    if out["onset_frac"] > out["gen_frac"]:
        raise UsageError("detector parameter onset_frac must not exceed gen_frac")
    return out


def fraction_of(record: Mapping[str, Any], key: str, step: int) -> float | None:
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    if not 0.0 <= x <= 1.0 + 1e-9:
        raise UsageError(f"{key}={value!r} at step {step} is not a fraction in [0, 1] (not percent)")
    return min(x, 1.0)


def parse_record(record: Mapping[str, Any]) -> tuple[int, float, float] | None:
    """``(step, train_acc, val_acc)`` of an eval record, or ``None`` when one of them is missing."""
    raw = record.get("step")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        step = int(raw)
    except (TypeError, ValueError):
        return None
    train, val = fraction_of(record, "train_acc", step), fraction_of(record, "val_acc", step)
    return None if train is None or val is None else (step, train, val)


def median(window: Sequence[float]) -> float:
    """Median of a short window (the smoother; online and offline must round identically)."""
    ordered = sorted(window)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def thresholds(v_mem: float, v_max: float, p: Mapping[str, Any]) -> tuple[float, float]:
    """(onset level, generalization level) for a run with val ``v_mem`` at t_mem and held max ``v_max``."""
    gain = v_max - v_mem
    # at most v_max: with gen_frac (or onset_frac) 1.0, v_mem + (v_max - v_mem) can round one ulp above v_max,
    # a level the curve never held
    onset = min(v_mem + p["onset_frac"] * gain, v_max)
    gen = min(v_mem + p["gen_frac"] * gain, v_max)
    if p["tau_gen_abs"] is not None:
        gen = min(gen, p["tau_gen_abs"])
    return onset, max(gen, onset)  # monotone in v_max: the online candidate pruning relies on it


def first_held(curve: Sequence[float], level: float, start: int, k: int) -> int | None:
    """First index from ``start`` where ``curve`` stays >= ``level`` for ``k`` evals (a held crossing)."""
    run = 0
    for i in range(start, len(curve)):
        run = run + 1 if curve[i] >= level else 0
        if run >= k:
            return i - k + 1
    return None


def fitted_rise(values: Sequence[float]) -> float:
    """Least-squares slope times span: how much a line fitted to ``values`` rises."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    return num / sum((i - mx) ** 2 for i in range(n)) * (n - 1)


def trend_start(start: int, n: int, p: Mapping[str, Any]) -> int:
    """Start of the window whose fitted rise says "still rising": the later half of [start, n), >= patience evals."""
    return max(start, n - max(p["patience"], (n - start) // 2))
