"""Value checks at grokplug's boundaries: what the CLI and the public API take is checked here, once.

Each check answers a bad value with one :class:`~grokplug.errors.UsageError` line that names the
argument (``--seed``, ``--set lr``, ``hparams['epochs']`` ...), before any work starts.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import UsageError

#: numpy's ``RandomState``/``default_rng`` take seeds in [0, 2**32 - 1]; torch takes more, so numpy bounds it.
SEED_MAX = 2**32 - 1

#: hyperparameters that must be positive (budgets, learning rates, sizes) whatever method declares them
_POSITIVE = {"lr", "learning_rate", "epochs", "num_train_epochs", "max_steps", "msteps", "kd_T", "batch_size",
             "per_device_train_batch_size", "gradient_accumulation_steps"}
#: ... that must be integers even when the declared default is ``None`` (``max_steps``: no cap)
_INTEGER = {"epochs", "max_steps", "msteps", "no_l1_epochs", "batch_size", "per_device_train_batch_size",
            "gradient_accumulation_steps", "warmup_steps"}
#: ... that must lie in a closed interval
_INTERVAL = {"weight_decay": (0.0, math.inf), "momentum": (0.0, 1.0), "mask_ratio": (0.0, 1.0),
             "retain_weight": (0.0, 1.0), "no_l1_epochs": (0.0, math.inf), "warmup_steps": (0.0, math.inf)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_seed(value: Any, what: str = "seed") -> int:
    """A seed that torch and numpy both accept: an integer in [0, 2**32 - 1]."""
    if not _is_int(value) or not 0 <= value <= SEED_MAX:
        raise UsageError(f"{what} must be an integer between 0 and {SEED_MAX}, got {value!r}")
    return int(value)


def check_positive_int(value: Any, what: str) -> int:
    if not _is_int(value) or value < 1:
        raise UsageError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_finite_positive(value: Any, what: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} must be a finite positive number, got {value!r}")
    return float(value)


def check_strengths(values: Iterable[Any], what: str = "sweep strength") -> list[float]:
    """Sweep strengths: at least one, each finite and positive (nan, inf, 0 and negatives are refused)."""
    out = [check_finite_positive(v, what) for v in values]
    if not out:
        raise UsageError(f"give at least one {what} value")
    return out


def finite_metric(value: Any, what: str) -> float:
    """A metric as a finite float (numpy and 0-d torch numbers too); a NaN would be stored and read as a phase."""
    try:
        number = float(value) if not isinstance(value, (str, bytes, bool)) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise UsageError(f"{what} must be a finite number, got {value!r}")
    return number


def check_step(value: Any, what: str = "step") -> int:
    """A training step: a non-negative integer (numpy integers too; 1.5 is refused, not truncated)."""
    try:
        step = operator.index(value)
    except TypeError:
        raise UsageError(f"{what} must be a non-negative integer, got {value!r}") from None
    if step < 0:
        raise UsageError(f"{what} must be a non-negative integer, got {value!r}")
    return int(step)


def _check_one(name: str, value: Any, default: Any, label: str, bounds: tuple[float, float] | None) -> Any:
    expects_int = _is_int(default) or (default is None and name in _INTEGER)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{label} must be true or false, got {value!r}")
        return value
    if default is None and value is None:
        return None
    if expects_int:
        if not _is_int(value):
            raise UsageError(f"{label} must be an integer, got {value!r}")
    elif isinstance(default, float) or name in _POSITIVE or bounds is not None:
        if not _is_number(value) or not math.isfinite(value):
            raise UsageError(f"{label} must be a finite number, got {value!r}")
        value = float(value) if isinstance(default, float) else value
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise UsageError(f"{label} must be a string, got {value!r}")
        return value
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{label} must be a list (e.g. [3,5]), got {value!r}")
        return list(value)
    else:
        return value  # declared without a type (default None): the method checks it
    if name in _POSITIVE and value <= 0:
        raise UsageError(f"{label} must be positive, got {value!r}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise UsageError(f"{label} must lie in [{bounds[0]:g}, {bounds[1]:g}], got {value!r}")
    return value


def check_hparams(
    method: Any, overrides: Mapping[str, Any], *, profile: str = "offline", what: str = "hparams"
) -> dict[str, Any]:
    """``overrides`` typed and range-checked against the hyperparameters ``method`` declares.

    The type comes from the declared default (int, float, bool, str, list); ranges from the name
    (``lr``/``epochs``/``max_steps`` positive, ``momentum`` in [0, 1] ...), from the method's
    ``strength_param`` (finite, positive) and from an optional ``hyperparameter_ranges`` attribute
    (``{"name": (low, high)}``, inclusive). Names the method does not declare are left to its own
    :meth:`~grokplug.UnlearningMethod.hyperparameters`, which refuses unknown ones.
    """
    declared = method.hyperparameters(profile)
    ranges = {**_INTERVAL, **dict(getattr(method, "hyperparameter_ranges", None) or {})}
    strength = getattr(method, "strength_param", None)
    out = dict(overrides)
    for name, value in overrides.items():
        if name not in declared:
            continue
        if what.startswith("--"):  # a CLI option: `--set lr`, or `--set ga.lr` for compare's METHOD.NAME
            label = f"{what}{name}" if what.endswith(".") else f"{what} {name}"
        else:
            label = f"{what}[{name!r}]"
        label += f" (method {getattr(method, 'name', '?')!r})"
        bounds = ranges.get(name)
        out[name] = _check_one(name, value, declared[name], label, tuple(bounds) if bounds is not None else None)
        if name == strength:
            out[name] = check_finite_positive(out[name], label)
    return out


def method_hparams(method: Any, profile: str, overrides: Mapping[str, Any] | None, *, what: str = "hparams") -> dict[str, Any]:
    """The method's hyperparameters for ``profile`` with ``overrides`` checked, then applied."""
    return method.hyperparameters(profile, **check_hparams(method, dict(overrides or {}), profile=profile, what=what))
