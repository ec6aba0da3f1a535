"""Built-in provider: resolve θ_grok / θ_pre / final / best from a local run directory."""

from __future__ import annotations

from grokplug._rundir import RunDir
from grokplug._types import PHASES, CheckpointRef, CheckpointRequest
from grokplug.errors import CheckpointError, NoGrokError, UsageError

from . import hookimpl

_ADVICE = {
    "memorization": "it memorised the training set but validation never rose; train longer or with more weight decay",
    "comprehension": "it generalised without a delay, so there is no post-grokking checkpoint distinct from θ_pre",
    "confusion": "it never fit the training set",
}


def _phase_step(run: RunDir, request: CheckpointRequest, phase: str) -> tuple[int, str | None, str]:
    """The step serving ``phase``, the run's label, and the phase actually served (after fallback)."""
    kept = set(run.checkpoint_steps())
    if not kept:
        raise CheckpointError(f"run {run.path} has no checkpoints")
    if phase.isdigit():
        return int(phase), None, phase
    if phase == "final":
        return max(kept), None, phase
    if phase == "best":
        scores = {r["step"]: r.get("val_acc", float("-inf")) for r in run.history() if r["step"] in kept}
        return (max(scores, key=lambda s: (scores[s], -s)) if scores else max(kept)), None, phase
    report = run.report()
    if report is None:
        raise CheckpointError(
            f"run {run.path} has no phase report yet (status: {run.status}); let training finish, or run "
            f"`grokplug inspect {run.path}`"
        )
    if phase.startswith("pre") and not report.shape:  # grok.json from before the two θ_pre rules: re-detect
        from grokplug._phases import detect_phases

        report = detect_phases(run.path)
    step = {"pre": report.pre_step, "pre-matched": report.pre_matched_step}.get(phase, report.grok_step)
    if step is not None:
        return int(step), report.label, phase
    if phase == "grok" and request.fallback:
        if request.fallback == "grok":
            raise UsageError("fallback cannot be 'grok' itself")
        fallback_step, _, served = _phase_step(run, request, request.fallback)
        return fallback_step, report.label, served
    if phase == "grok":
        why = _ADVICE.get(report.label, "")
        raise NoGrokError(
            f"run {run.path} never grokked (label: {report.label}{'; ' + why if why else ''}), so θ_grok does not "
            "exist; pass fallback='final' (CLI: --fallback final) to start from its final checkpoint instead"
        )
    rule = "matched-train" if phase == "pre-matched" else "early-stop"
    raise CheckpointError(f"run {run.path} has no θ_pre by the {rule} rule (label: {report.label})")


@hookimpl(trylast=True)
def grokplug_resolve_checkpoint(request: CheckpointRequest) -> CheckpointRef | None:
    source = str(request.source)
    if "://" in source:
        return None  # a URI: some other provider's business
    phase = str(request.phase)
    if phase not in PHASES and not phase.isdigit():
        raise UsageError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)} or a step number")
    fallback = request.fallback
    if fallback is not None and (fallback == "grok" or (str(fallback) not in PHASES and not str(fallback).isdigit())):
        raise UsageError(f"unknown fallback {fallback!r} (--fallback): choose pre, final, best or a step number")
    run = RunDir(source)
    step, label, served = _phase_step(run, request, phase)
    entry = run.checkpoint_entry(step)
    metrics = run.history_record(step) or {}  # one record: parsing a long history dominated resolution
    return CheckpointRef(
        phase=served,
        step=step,
        path=run.resolve_inside(entry["path"]),
        sha256=entry["sha256"],
        metrics={k: v for k, v in metrics.items() if k != "saved"},
        run_dir=run.path,
        provider="local-run-dir",
        requested_phase=phase,
        label=label,
    )
