"""Steps-to-target read off a cell's trail, for every target level at once, and the flags they raise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._targets import resolve_target

__all__ = ["step_flags", "target_rows"]


def target_rows(targets: Sequence[str], trail: Sequence[Sequence[float]], start_metrics: Mapping[str, float],
                retrain: Mapping[str, float] | None, iterative: bool, final_forget: float) -> dict[str, Any]:
    """Steps-to-target for every target level, read off the trail ``(step, forget_acc, retain_acc)``.

    Steps = the first recorded step with ``forget_acc ≤ threshold`` (exact: the trail has every
    update); step 0 = met at start; no such step = never reached (censored at the budget).
    """
    rows: dict[str, Any] = {}
    for spec in targets:
        threshold = resolve_target(spec, start_metrics, retrain)
        assert threshold is not None  # validated in compare(): "none" is not a target
        if not iterative:  # one-shot: no steps; only whether the result reaches the level
            rows[spec] = {"threshold": threshold, "steps": None, "reached": final_forget <= threshold,
                          "met_at_start": False, "censored": False, "forget_acc": None, "retain_acc": None}
            continue
        hit = next((p for p in trail if p[1] <= threshold), None)
        rows[spec] = {
            "threshold": threshold, "steps": None if hit is None else int(hit[0]), "reached": hit is not None,
            "met_at_start": hit is not None and hit[0] == 0, "censored": hit is None,
            "forget_acc": None if hit is None else hit[1], "retain_acc": None if hit is None else hit[2],
        }
    return rows


def step_flags(rows: Mapping[str, Any], iterative: bool) -> list[str]:
    if not iterative:
        return ["one_shot"]
    flags = [f"met_at_start:{s}" for s, r in rows.items() if r["met_at_start"]]
    return flags + [f"never_reached:{s}" for s, r in rows.items() if r["censored"]]
