"""How compare reads its arguments (methods, targets, strengths), describes the run, and loads optional parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError

__all__ = ["grokplug_version", "import_optional", "resolve_methods", "resolve_strengths", "resolve_targets", "run_info"]


def resolve_methods(names: Sequence[str] | str, domain: str) -> dict[str, Any]:
    from ..plugins import get_plugin_manager

    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not names:
        raise UsageError("give at least one unlearning method (see `grokplug plugins`)")
    out: dict[str, Any] = {}
    for raw in names:
        entry = get_plugin_manager().methods.entry(raw.strip())
        if getattr(entry.obj, "domain", None) != domain:
            raise UsageError(f"this run is a {domain} run; method {entry.name!r} is for the {entry.obj.domain!r} domain")
        out.setdefault(entry.name, entry.obj)
    return out


def resolve_targets(targets: Sequence[str | float], primary: str | float) -> tuple[list[str], str]:
    from .._targets import resolve_target

    specs = [str(t) for t in targets]
    primary = str(primary)
    if primary not in specs:
        specs.append(primary)
    probe = {"test_acc": 0.5, "forget_acc": 0.5}
    for spec in specs:
        if spec == "none":
            raise UsageError("'none' is not a target level for compare; give e.g. frac:0.5, 0.2, test or retrain")
        resolve_target(spec, probe, {"forget_acc": 0.5})  # raises UsageError for a malformed spec
    return list(dict.fromkeys(specs)), primary


def resolve_strengths(methods: Mapping[str, Any], given: Mapping[str, Sequence[float]], domain: str) -> dict[str, tuple[float, ...]]:
    """Per one-shot method, the strengths its cells sweep (weakest first): ``given`` or its ``strength_sweep``."""
    from .._validate import check_strengths

    out: dict[str, tuple[float, ...]] = {}
    for name, values in given.items():
        canonical = next(iter(resolve_methods([name], domain)))
        if canonical not in methods or methods[canonical].iterative:
            raise UsageError(f"strengths given for {name!r}, which is not a one-shot method among the compared methods")
        if methods[canonical].strength_param is None:
            raise UsageError(f"strengths given for {name!r}, which declares no strength parameter to sweep")
        out[canonical] = tuple(check_strengths(values, f"strengths[{name!r}]"))
    for name, obj in methods.items():  # a one-shot method without a sweep: its verdict says so
        declared = tuple(getattr(obj, "strength_sweep", ()) or ())
        if not getattr(obj, "iterative", True) and name not in out and getattr(obj, "strength_param", None) and declared:
            out[name] = tuple(check_strengths(declared, f"{name}'s strength_sweep"))
    return out


def run_info(run: Any, refs: Mapping[str, Any]) -> dict[str, Any]:
    from .._atomic import sha256_json

    report = run.report()
    if report is None or not report.shape:
        from .._phases import detect_phases

        report = detect_phases(run.path)
    return {
        "path": str(run.path.resolve()), "preset": run.config.get("preset"), "config_sha256": sha256_json(run.config),
        "label": report.label, "t_mem": report.t_mem, "t_gen": report.t_gen, "grok_ratio": report.grok_ratio,
        "shape": report.shape, "shape_numbers": report.shape_numbers,
        **{start: {"step": ref.step, "sha256": ref.sha256, "phase": ref.phase, "metrics": dict(ref.metrics)}
           for start, ref in refs.items()},
    }


def import_optional(module: str, name: str, what: str) -> Any:
    """Import an optional part lazily; a missing one is a one-line error, not a traceback."""
    import importlib

    from ..errors import GrokplugError

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise GrokplugError(f"compare {what} need {module}.{name}, which cannot be imported here: {exc}") from exc


def grokplug_version() -> str:
    from .._version import __version__

    return __version__
