"""How compare writes numbers: a value, a mean with its CI, a censored ratio with its CI (results.md, the demo)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ci_text", "fmt", "ratio_parts", "ratio_text"]


def fmt(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def ci_text(d: Mapping[str, Any] | None, spec: str = "+.3f") -> str:
    if not d or d.get("mean") is None:
        return "—"
    return f"{d['mean']:{spec}} ({fmt(d.get('ci_low'), spec)} to {fmt(d.get('ci_high'), spec)})"


def ratio_parts(ratio: Mapping[str, Any]) -> tuple[str, str]:
    """``("≥ 2.10×", "1.50–3.00")``: the ratio with its censoring bound, and its CI."""
    sign = {"lower": "≥ ", "upper": "≤ "}.get(ratio["bound"], "")
    high = fmt(ratio.get("ci_high"), ".2f") if ratio.get("ci_high") is not None else "∞"
    return f"{sign}{ratio['value']:.2f}×", f"{fmt(ratio.get('ci_low'), '.2f')}–{high}"


def ratio_text(ratio: Mapping[str, Any]) -> str:
    if ratio.get("value") is None:
        return "—"
    if ratio["bound"] == "undefined":  # e.g. both starts censored: the number carries no direction
        return f"undefined ({ratio['value']:.2f}× at budgets)"
    value, ci = ratio_parts(ratio)
    return f"{value} ({ci})"
