"""The unlearning orchestrator: the one place that runs a method from θ_pre or θ_grok, monitored, and evaluates it.

Every entry point goes through :func:`unlearn`: the Python API, ``grokplug unlearn``, compare's cells,
:meth:`grokplug.adapters.TrainerAdapter.unlearn` and :func:`grokplug.grok_aware`. It resolves the
start, builds the :class:`~grokplug.UnlearnContext`, fires ``before_unlearn`` / ``on_unlearn_step`` /
``after_unlearn``, refuses NaN results, checks that the source checkpoint is unchanged and writes the
output atomically. What differs between vision and LLM (data, probe, evaluation, reference, how a
method runs) comes from the method's domain, looked up in the domain registry (:mod:`grokplug._domain`):
this module imports no domain package.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._atomic import atomic_dir, sha256_file
from ._domain import MonitorSettings, UnlearningDomain
from ._monitor import Probe
from ._paths import check_output_dir, source_dirs
from ._resolve import Source, build_model, load_checkpoint, run_dir_of
from ._targets import resolve_target
from ._unlearn_types import UnlearnContext, UnlearnResult
from ._unlearning_method import UnlearningMethod, resolve_profile
from ._validate import check_seed, method_hparams
from .errors import DivergedError, GrokplugError, UsageError
from .plugins import get_plugin_manager

__all__ = ["domain_of", "registered_method", "result_to_dict", "run_data", "unlearn"]

#: ``target=DEFAULT`` means the domain's default target (``test`` for vision, ``retrain`` for LLM).
DEFAULT = "default"


def registered_method(method: str | UnlearningMethod) -> tuple[str, UnlearningMethod]:
    """``(name, method object)`` for a registered name or alias, or for a method object."""
    if isinstance(method, str):
        entry = get_plugin_manager().methods.entry(method)
        return entry.name, entry.obj
    return getattr(method, "name", None) or type(method).__name__, method


def domain_of(method: Any) -> UnlearningDomain:
    """The registered domain of a method object (its ``domain`` attribute)."""
    name = getattr(method, "domain", None)
    domains = get_plugin_manager().domains
    if not isinstance(name, str) or name not in domains:
        known = ", ".join(domains.names()) or "none"
        raise UsageError(f"method {getattr(method, 'name', method)!r} has domain {name!r}, which no plugin registers; known domains: {known}")
    return domains.get(name)


def run_domain(source: Source) -> UnlearningDomain:
    """The domain of a run made by a preset (its preset's ``unlearn_domain``)."""
    run = run_dir_of(source)
    name = run.config.get("preset")
    if not name:
        raise UsageError(f"run {run.path} was not made by a preset; say which domain its data belongs to (domain=)")
    preset = get_plugin_manager().presets.get(str(name))
    return get_plugin_manager().domains.get(getattr(preset, "unlearn_domain", "vision"))


def run_data(source: Source, *, seed: int = 0, domain: str | None = None, **options: Any) -> Any:
    """The forget/retain/test data of a run that methods receive (public: e.g. for a SalUn saliency mask).

    Vision runs take ``forget_rate`` or ``forget_classes`` (a :class:`grokplug.vision.VisionData`);
    TOFU-style runs take ``forget_split`` (a :class:`grokplug.llm.LLMRunData`). ``domain`` defaults to
    the run's preset's domain.
    """
    dom = get_plugin_manager().domains.get(domain) if domain is not None else run_domain(source)
    dom.check_options(options)
    return dom.run_data(source, seed=seed, options=options)


def _seed_everything(seed: int) -> None:
    """``random``, numpy and torch (every device), through accelerate's ``set_seed``."""
    from accelerate.utils import set_seed

    set_seed(seed)


def _finite(metrics: Mapping[str, Any]) -> bool:
    return not any(isinstance(v, float) and math.isnan(v) for v in metrics.values())


def unlearn(
    method: str | UnlearningMethod,
    model: Any = None,
    splits: Any = None,
    *,
    start: str = "grok",
    source: Source | None = None,
    target: str | float | None = DEFAULT,
    seed: int = 0,
    hparams: Mapping[str, Any] | None = None,
    profile: str = "auto",
    eval_every: int = 1,
    stop_at_target: bool = True,
    fallback: str | None = None,
    retrain_metrics: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    accelerator: Any = None,
    probe: Probe | None = None,
    metrics: tuple[str, ...] | list[str] = (),
    start_ref: Any = None,
    **options: Any,
) -> UnlearnResult:
    """Run ``method`` from the ``start`` checkpoint of ``source`` and measure it.

    ``model`` defaults to the run's own architecture (preset runs); ``splits`` to the run's data for
    ``options`` (vision: ``forget_rate`` (default 0.15) or ``forget_classes``; LLM: ``forget_split``,
    ``lora`` ...; see :func:`run_data`). Without ``source`` the ``model`` is used as given
    (``start_ref`` records where it came from). ``probe`` (``model -> {"forget_acc", "retain_acc"}``)
    replaces the domain's; ``metrics`` names extra metrics from the registry, each called as
    ``metric(model, data)`` on the start and the result. Everything is seeded (``random``, numpy,
    torch). The source checkpoint is only read (checked after the run); with ``output_dir`` the
    unlearned model and ``result.json`` go to a new directory, atomically. ``profile="auto"`` takes the
    method's profile for the run's preset where it has one (:func:`grokplug._unlearning_method.resolve_profile`),
    else ``"offline"``.
    """
    if output_dir is not None:  # refused before any work: never into the source run, never over a file
        check_output_dir(output_dir, sources=source_dirs(source) if source is not None else [], what="output_dir",
                         must_be_empty=True)
    seed = check_seed(seed)
    name, method_obj = registered_method(method)
    domain = domain_of(method_obj)
    if source is not None and preset_of(source) is not None and (ran := run_domain(source)).name != domain.name \
            and domain.name in _data_domains():  # a domain some preset's runs belong to, not e.g. @grok_aware's
        raise UsageError(f"run {run_dir_of(source).path} is a {ran.name} run; method {name!r} is for the "
                         f"{domain.name!r} domain (see `grokplug plugins` for each method's domain)")
    domain.check_options(options)
    pm = get_plugin_manager()
    extra_metrics = {m: pm.metrics.get(m) for m in metrics}
    profile = resolve_profile(method_obj, profile, preset_of(source) if source is not None else None)
    params = method_hparams(method_obj, profile, hparams)
    if "seed" in params and "seed" not in (hparams or {}):  # a method with its own seed gets the run's
        params["seed"] = seed
    _seed_everything(seed)
    if source is not None:
        model = build_model(source) if model is None else model
        ref = load_checkpoint(model, source, start, fallback=fallback)
    elif model is None:
        raise UsageError("pass the model to unlearn, or source= (a run dir) to load its start into it")
    else:
        ref = start_ref
    data = splits if splits is not None else domain.run_data(source, seed=seed, options=options)
    domain.check_data(data)
    model, accelerator = domain.prepare_model(model, accelerator, options)
    probe = probe or domain.probe(data)
    target = domain.default_target if target == DEFAULT else target
    iterative = bool(getattr(method_obj, "iterative", True))
    reference = retrain_metrics
    if reference is None and source is not None:
        reference = domain.reference(source, data, seed=seed, target=target if iterative else None, options=options)
    start_metrics = domain.evaluate(model, data, seed=seed, start=None, reference=reference, options=options)
    start_metrics.update({m: float(fn(model, data)) for m, fn in extra_metrics.items()})
    if target is not None and target != "none" and "forget_acc" not in start_metrics and probe is not None:
        start_metrics.update(probe(model))
    threshold = resolve_target(target, start_metrics, reference) if iterative else None
    config: dict[str, Any] = {
        "start": ref.phase if ref is not None else None, "seed": seed, "hparams": params, "target": target,
        "target_forget_acc": threshold, "domain": domain.name, "profile": profile,
        "retrain_metrics": {k: v for k, v in reference.items() if isinstance(v, (int, float))} if reference else None,
        **{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in options.items()},
    }
    context = UnlearnContext(method=name, model=model, start=ref, seed=seed, config=config, accelerator=accelerator)
    pm.before_unlearn(context)
    settings = MonitorSettings(probe=probe, target=threshold, eval_every=eval_every, stop_at_target=stop_at_target,
                               on_eval=lambda step, values: pm.unlearn_step(context, step, values))
    updates: int | None = None
    try:  # a NaN/inf stops the run at the monitor's next evaluation; it is never passed off as a result
        outcome = domain.run_method(method_obj, model, data, params, settings, options)
        updates = outcome.steps
        if outcome.accelerator is not None:
            context.accelerator = outcome.accelerator
        final_metrics = domain.evaluate(outcome.model, data, seed=seed, start=start_metrics, reference=reference,
                                        options=options)
        final_metrics.update({m: float(fn(outcome.model, data)) for m, fn in extra_metrics.items()})
        if not _finite(final_metrics):
            raise DivergedError("it produced NaN metrics")
    except DivergedError as exc:  # the domain's monitor says how many updates ran (``exc.updates``)
        updates = getattr(exc, "updates", updates)
        after = f" after {updates} update(s)" if updates is not None else ""
        raise DivergedError(f"unlearning with {name!r} from {_start_name(ref, start)} diverged{after}: {exc}; "
                            "no result was written") from exc
    if ref is not None and source is not None and Path(ref.path).is_file() and sha256_file(ref.path) != ref.sha256:
        raise GrokplugError(f"the source checkpoint {ref.path} changed during unlearning; no result was written")
    if "forget_acc" not in final_metrics and outcome.trail:  # no evaluation beyond the probe: its last reading
        final_metrics.update(forget_acc=outcome.trail[-1][1], retain_acc=outcome.trail[-1][2])
    final_metrics.update(start_metrics=start_metrics, target_forget_acc=threshold,
                         met_at_start=outcome.met_at_start, split=domain.split_info(data))
    result = UnlearnResult(
        model=outcome.model, method=name, start=ref, metrics=final_metrics,
        steps_to_target=outcome.steps_to_target if iterative else None, steps_applicable=iterative,
        total_steps=outcome.steps, stopped_early=outcome.stopped_early, trail=list(outcome.trail), config=config,
    )
    pm.after_unlearn(context, result)
    if output_dir is not None:
        from ._accelerate import is_main_process

        if is_main_process(context.accelerator if hasattr(context.accelerator, "is_main_process") else None):
            with atomic_dir(output_dir, what="write the unlearned model to") as tmp:
                domain.save_model(outcome.model, tmp, options)
                info = {**result_to_dict(result), **domain.result_fields(result)}
                (tmp / "result.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
                for file_name, content in domain.extra_files(result).items():
                    (tmp / file_name).write_text(json.dumps(content, indent=2, default=str) + "\n")
        result.output_dir = Path(output_dir)
    return result


def _data_domains() -> set[str]:
    """The domains that preset runs belong to (a method of one of them needs that domain's run)."""
    presets = get_plugin_manager().presets
    return {getattr(presets.get(name), "unlearn_domain", "vision") for name in presets.names()}


def preset_of(source: Source) -> str | None:
    """The preset that made ``source``'s run, if any (a path that is not a run has none)."""
    try:
        return run_dir_of(source).config.get("preset")
    except (UsageError, OSError, TypeError):
        return None


def _start_name(ref: Any, start: str) -> str:
    return f"θ_{ref.phase}" if ref is not None else f"start {start!r}"


def result_to_dict(result: UnlearnResult) -> dict[str, Any]:
    """The JSON form of a result (what ``grokplug unlearn --json`` prints and ``result.json`` holds)."""
    metrics = {k: v for k, v in result.metrics.items() if not k.startswith("_")}  # "_...": domain-private
    split = metrics.pop("split", None)
    start = metrics.get("start_metrics")
    return {
        "method": result.method,
        "domain": result.config.get("domain"),
        "profile": result.config.get("profile"),
        "hparams": result.config.get("hparams"),
        "seed": result.config.get("seed"),
        "target": result.config.get("target"),
        "retrain_metrics": result.config.get("retrain_metrics"),
        "start": result.start.phase if result.start else None,
        "start_step": result.start.step if result.start else None,
        "start_sha256": result.start.sha256 if result.start else None,
        "steps_to_target": result.steps_to_target,
        "steps_applicable": result.steps_applicable,
        "total_steps": result.total_steps,
        "stopped_early": result.stopped_early,
        **{k: v for k, v in metrics.items() if k != "start_metrics"},
        "start_metrics": {k: v for k, v in start.items() if not k.startswith("_")} if isinstance(start, Mapping) else start,
        "trail": [list(point) for point in result.trail],
        "split": {k: v for k, v in (split or {}).items() if k not in ("forget", "retain")},
    }
