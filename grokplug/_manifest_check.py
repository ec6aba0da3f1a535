"""The structure a run's manifest.json must have: what is wrong with a hand-edited or damaged one, in one line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["manifest_problem"]


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with a manifest's structure (``None``: nothing), so a hand edit is one line, not a crash."""
    checkpoints = manifest.get("checkpoints", {})
    if not isinstance(checkpoints, dict):
        return "'checkpoints' is not a table"
    for key, entry in checkpoints.items():
        if not (isinstance(key, str) and key.isdigit() and key == str(int(key))):
            return f"checkpoint key {key!r} is not a step number"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("sha256"), str):
            return f"checkpoint {key} has no 'path' and 'sha256' strings"
    pins = manifest.get("pins", {})
    if not isinstance(pins, dict) or any(v is not None and not _is_step(v) for v in pins.values()):
        return f"'pins' must map phases to step numbers, got {pins!r}"
    latest = manifest.get("latest_step")
    if latest is not None and not _is_step(latest):
        return f"'latest_step' is not a step number: {latest!r}"
    run = manifest.get("run", {})
    if not isinstance(run, dict) or not isinstance(run.get("config", {}), dict):
        return "'run' / 'run.config' is not a table"
    if not isinstance(manifest.get("status", "running"), str):
        return "'status' is not a string"
    return None
