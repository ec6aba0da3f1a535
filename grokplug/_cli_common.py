"""What every `grokplug` command shares: JSON output, the `--set` and forget-rate parsers, method look-up."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

from .errors import UsageError

__all__ = ["json_text", "method_entry", "parse_compare_hparams", "parse_hparams", "parse_rate"]


def json_text(obj: Any) -> str:
    """JSON that is JSON: a NaN or infinity becomes null (Python would print the invalid token NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(obj), indent=2, ensure_ascii=False, allow_nan=False, default=str)


def method_entry(name: str) -> Any:
    from .plugins import get_plugin_manager

    return get_plugin_manager().methods.entry(name)


def parse_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"forget rate must be a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"forget rate must lie strictly between 0 and 1, got {value}")
    return value


def parse_hparams(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--set expects NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def parse_compare_hparams(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        method, dot, rest = pair.partition(".")
        if not dot or not method or "=" not in rest:
            raise UsageError(f"--set expects METHOD.NAME=VALUE (e.g. ga.epochs=40), got {pair!r}")
        out.setdefault(method, {}).update(parse_hparams([rest]))
    return out
