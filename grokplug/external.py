"""Runs grokplug did not write: read their eval history through a hook, find θ_pre / θ_grok among
the checkpoints they saved, and say plainly when those are too sparse to hold either.

A provider plugin (the built-in one reads HF Trainer output directories, ``grokplug.hooks.hf_trainer_run``)
implements two hooks:

* ``grokplug_read_history(request)`` returns a :class:`RunHistory` (eval records with ``train_acc`` /
  ``val_acc`` and the steps that have a checkpoint), which ``grokplug inspect`` classifies;
* ``grokplug_resolve_checkpoint(request)`` serves a checkpoint; :func:`resolve_in_history` does the
  phase → step work, so a Lightning or W&B provider only has to say where step N's weights are.

The detector runs on the *whole* eval history (through ``grokplug_detect_phases``), so θ_pre and
θ_grok are the run's real ones; when the run kept no checkpoint at that step the request fails with
the nearest saved step named, unless the caller accepts it (``nearest=True``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._atomic import sha256_file
from ._types import PHASES, CheckpointRef, CheckpointRequest, RunHistory
from .errors import CheckpointError, NoGrokError, UsageError

__all__ = ["RunHistory", "inspect_source", "nearest_step", "read_history", "resolve_in_history"]


def nearest_step(steps: Sequence[int], target: int) -> int:
    """The saved step closest to ``target`` (the earlier one on a tie)."""
    return min(steps, key=lambda s: (abs(s - target), s))


def read_history(source: str | os.PathLike[str], **options: Any) -> RunHistory:
    """The eval history of a run another tool wrote, from the first provider that reads ``source``."""
    from .plugins import get_plugin_manager

    request = CheckpointRequest(source=str(source), phase="final", options=options)
    found = get_plugin_manager().read_history(request)
    if found is None:
        raise UsageError(
            f"{source} is neither a grokplug run directory nor a run any installed provider reads "
            "(an HF Trainer output dir has trainer_state.json; see `grokplug plugins`)"
        )
    return found


def _phase_steps(run: RunHistory) -> tuple[Any, int | None, int | None]:
    from ._phases import detect_phases

    report = detect_phases(run.history, **run.detector_params)  # every eval step qualifies: the real θs
    return report, report.pre_step, report.grok_step


def _sparse_message(run: RunHistory, phase: str, step: int) -> str:
    saved = run.checkpoint_steps
    shown = ", ".join(map(str, saved[:12])) + (" …" if len(saved) > 12 else "")
    near = nearest_step(saved, step)
    return (
        f"θ_{phase} of {run.source} is step {step}, but the run saved no checkpoint there (saved steps: "
        f"{shown}); the nearest is step {near} ({abs(near - step)} steps away). Request step '{near}' "
        f"explicitly, pass nearest=True to accept it, or save more often (save_steps) next time"
    )


def resolve_in_history(
    run: RunHistory, request: CheckpointRequest, weights_of: Callable[[int], Path], *, provider: str
) -> CheckpointRef:
    """Serve ``request`` from ``run``: ``weights_of(step)`` is the safetensors file of a saved step.

    ``grok``/``pre`` come from the detector on the full history; ``final`` is the last saved step,
    ``best`` the saved step with the highest ``val_acc``; a number is that saved step.
    """
    phase = str(request.phase)
    if phase not in PHASES and not phase.isdigit():
        raise UsageError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)} or a step number")
    saved = run.checkpoint_steps
    if not saved:
        raise CheckpointError(f"{run.source} has no saved checkpoints with safetensors weights")
    label, served = None, phase
    if phase.isdigit():
        step = int(phase)
        if step not in saved:
            raise CheckpointError(
                f"{run.source} has no checkpoint at step {step} (saved: {', '.join(map(str, saved))})"
            )
    elif phase == "final":
        step = max(saved)
    elif phase == "best":
        scores = {s: run.record(s).get("val_acc", float("-inf")) for s in saved}
        step = max(scores, key=lambda s: (scores[s], -s))
    else:
        report, pre, grok = _phase_steps(run)
        label = report.label
        found = pre if phase == "pre" else grok
        if found is None and phase == "grok" and request.fallback:
            if request.fallback == "grok":
                raise UsageError("fallback cannot be 'grok' itself")
            fallback = CheckpointRequest(request.source, request.fallback, None, request.options)
            ref = resolve_in_history(run, fallback, weights_of, provider=provider)
            return dataclasses.replace(ref, requested_phase=phase, label=label)
        if found is None:
            if phase == "grok":
                raise NoGrokError(
                    f"{run.source} never grokked (label: {report.label}), so θ_grok does not exist; pass "
                    "fallback='final' to start from its last checkpoint instead"
                )
            raise CheckpointError(f"{run.source} has no θ_pre (label: {report.label})")
        step = int(found)
        if step not in saved:
            if not request.options.get("nearest"):
                raise CheckpointError(_sparse_message(run, phase, step))
            step = nearest_step(saved, step)
    path = weights_of(step)
    return CheckpointRef(
        phase=served, step=step, path=path, sha256=sha256_file(path),
        metrics={k: v for k, v in run.record(step).items() if k != "step"}, run_dir=None, provider=provider,
        requested_phase=phase, label=label,
    )  # fmt: skip


def inspect_source(source: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """``grokplug inspect`` for a run another tool wrote: the phase report plus where θ_pre / θ_grok
    fall relative to the saved checkpoints (``pre_checkpoint``/``grok_checkpoint``: the saved step
    serving each, ``None`` when none is saved there)."""
    run = read_history(source, **options)
    report, pre, grok = _phase_steps(run)
    out = report.to_dict()
    out.update(
        run_dir=str(source), status=run.kind, checkpoints_kept=len(run.checkpoint_steps),
        kept_steps=list(run.checkpoint_steps), notes=list(run.notes),
    )  # fmt: skip
    for phase, step in (("pre", pre), ("grok", grok)):
        key = f"{phase}_checkpoint"
        out[key] = step if step is not None and step in run.checkpoint_steps else None
        if step is not None and step not in run.checkpoint_steps:
            out["notes"].append(
                _sparse_message(run, phase, step) if run.checkpoint_steps else f"θ_{phase} is step {step}, but no checkpoints were saved"
            )
            out[f"{phase}_nearest"] = nearest_step(run.checkpoint_steps, step) if run.checkpoint_steps else None
    return out


def check_options(options: Mapping[str, Any], known: Sequence[str], kind: str) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"unknown option(s) for {kind}: {', '.join(unknown)}; valid: {', '.join(known)}")
