"""``grokplug.unlearn``: run one method from θ_pre or θ_grok, monitored, and evaluate it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._atomic import describe_os_error
from ._method import UnlearningMethod, resolve_profile
from ._paths import check_output_dir, source_dirs
from ._resolve import Source, build_model, load_checkpoint, run_dir_of
from ._store import snapshot_state_dict, write_safetensors
from ._unlearn_types import UnlearnContext, UnlearnResult
from .errors import DivergedError, UsageError
from .plugins import get_plugin_manager
from .vision.data import VisionData, check_disjoint, loaders_from_tensors, make_forget_split
from .vision.monitor import StepMonitor, resolve_target


def preset_unlearning_data(
    source: Source,
    *,
    forget_rate: float | None = None,
    forget_classes: list[int] | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> VisionData:
    """Forget/retain/test loaders for a run made by a preset (test = the preset's held-out set)."""
    run = run_dir_of(source)
    name = run.config.get("preset")
    if not name:
        raise UsageError(f"run {run.path} was not made by a preset; build VisionData yourself and pass it as splits=")
    preset = get_plugin_manager().presets.get(str(name))
    data = preset.make_data(run.config, run.seed or 0)
    if forget_rate is None and not forget_classes:
        forget_rate = 0.15
    split = make_forget_split(
        data.train_y, rate=forget_rate, classes=forget_classes, eligible=data.forget_eligible, seed=seed
    )
    test_x, test_y = data.val_x, data.val_y
    if split.kind == "class":  # as OPTML: test accuracy is measured on the remaining classes
        keep = ~torch.isin(test_y, torch.tensor(split.classes or ()))
        test_x, test_y = test_x[keep], test_y[keep]
    return loaders_from_tensors(
        data.train_x, data.train_y, split, num_classes=data.num_classes, test=(test_x, test_y),
        batch_size=batch_size, seed=seed,
    )


def _check_data(data: VisionData) -> None:
    """Refuse an empty forget set or a forget/retain overlap, also in splits the caller built."""
    if data.split is not None:
        check_disjoint(data.split.forget, data.split.retain)
    try:
        empty = len(getattr(data.forget, "dataset", None)) == 0  # type: ignore[arg-type]
    except TypeError:  # an iterable dataset: its size is unknown
        return
    if empty:
        raise UsageError("the forget set is empty; there is nothing to unlearn")


def _preset_of(source: Source) -> str | None:
    """The preset that made ``source``'s run, if any (a path that is not a run has none)."""
    try:
        return run_dir_of(source).config.get("preset")
    except (UsageError, OSError, TypeError):
        return None


def _method(method: str | UnlearningMethod) -> tuple[str, UnlearningMethod]:
    if isinstance(method, str):
        entry = get_plugin_manager().methods.entry(method)
        return entry.name, entry.obj
    return method.name or type(method).__name__, method


def _write_output(out: Path, model: torch.nn.Module, result: Mapping[str, Any]) -> None:
    """Write the unlearned model and result into a new directory, atomically (temp dir, then rename)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"output directory {out} already exists and is not empty; choose a new one")
    tmp: Path | None = None
    try:  # creating the parent or the temp dir fails first on a read-only or full disk: same one-line error
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        write_safetensors(snapshot_state_dict(model), tmp / "model.safetensors")
        (tmp / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise describe_os_error(exc, "write the unlearned model to", out) from exc
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def unlearn(
    method: str | UnlearningMethod,
    model: torch.nn.Module | None = None,
    splits: VisionData | None = None,
    *,
    start: str = "grok",
    source: Source,
    target: str | float | None = "test",
    seed: int = 0,
    hparams: Mapping[str, Any] | None = None,
    profile: str = "auto",
    forget_rate: float | None = None,
    forget_classes: list[int] | None = None,
    eval_every: int = 1,
    stop_at_target: bool = True,
    fallback: str | None = None,
    retrain_metrics: Mapping[str, float] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    accelerator: Any = None,
) -> UnlearnResult:
    """Run ``method`` from the ``start`` checkpoint of ``source`` and measure it.

    ``model`` defaults to the run's own architecture (preset runs); ``splits`` defaults to a seeded
    random (``forget_rate``, default 0.15) or class-wise (``forget_classes``) split of the run's
    data. The model is placed by accelerate (CPU, one GPU or several). The source checkpoint is
    only read; with ``output_dir`` the unlearned model and metrics go to a new directory.
    ``profile="auto"`` takes the method's profile for the run's preset where it has one
    (:func:`grokplug._method.resolve_profile`), else ``"offline"``.
    """
    from accelerate import Accelerator

    from .vision.metrics import evaluate_vision

    if output_dir is not None:  # refused before any work: never into the source run, never over a file
        check_output_dir(output_dir, sources=source_dirs(source), what="output_dir", must_be_empty=True)
    name, method_obj = _method(method)
    profile = resolve_profile(method_obj, profile, _preset_of(source))
    params = method_obj.hyperparameters(profile, **dict(hparams or {}))
    torch.manual_seed(seed)
    model = build_model(source) if model is None else model
    ref = load_checkpoint(model, source, start, fallback=fallback)
    data = splits if splits is not None else preset_unlearning_data(source, forget_rate=forget_rate, forget_classes=forget_classes, seed=seed)
    _check_data(data)
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    model = accelerator.prepare(model)
    start_metrics = evaluate_vision(model, data, seed=seed)
    if target == "retrain" and retrain_metrics is None and method_obj.iterative:
        from ._retrain import retrain_reference

        retrain_metrics = retrain_reference(source, data, seed=seed)
    threshold = resolve_target(target, start_metrics, retrain_metrics) if method_obj.iterative else None
    pm = get_plugin_manager()
    config = {"start": start, "seed": seed, "profile": profile, "hparams": params, "target": target, "target_forget_acc": threshold,
              "retrain_metrics": dict(retrain_metrics) if retrain_metrics else None}
    context = UnlearnContext(method=name, model=model, start=ref, seed=seed, config=config, accelerator=accelerator)
    pm.before_unlearn(context)
    monitor = StepMonitor(
        model, data.forget, data.retain, target=threshold, eval_every=eval_every, stop_at_target=stop_at_target,
        on_eval=lambda step, metrics: pm.unlearn_step(context, step, metrics),
    )
    returned = None
    try:  # a NaN/inf stops the run at the monitor's next evaluation; it is never passed off as a result
        with monitor:
            if not (monitor.met_at_start and stop_at_target):
                returned = method_obj.run(model, data, **params)
        final = returned if isinstance(returned, torch.nn.Module) else model
        metrics = evaluate_vision(final, data, start=start_metrics, seed=seed)
        if any(v != v for v in metrics.values() if isinstance(v, float)):
            raise DivergedError("it produced NaN metrics")
    except DivergedError as exc:
        raise DivergedError(
            f"unlearning with {name!r} from θ_{ref.phase} diverged after {monitor.steps} update(s): {exc}; "
            "no result was written"
        ) from exc
    result = UnlearnResult(
        model=final, method=name, start=ref, metrics=metrics,
        steps_to_target=monitor.steps_to_target if method_obj.iterative else None,
        steps_applicable=method_obj.iterative, total_steps=monitor.steps, stopped_early=monitor.stopped_early,
        trail=monitor.trail, config=dict(config),
    )
    result.metrics.update(start_metrics={k: v for k, v in start_metrics.items()}, target_forget_acc=threshold,
                          met_at_start=monitor.met_at_start, split=data.split.to_dict() if data.split else None)
    pm.after_unlearn(context, result)
    if output_dir is not None:
        _write_output(Path(output_dir), accelerator.unwrap_model(final), result_to_dict(result))
        result.output_dir = Path(output_dir)
    return result


def result_to_dict(result: UnlearnResult) -> dict[str, Any]:
    """The JSON form of a result (what ``grokplug unlearn --json`` prints and ``result.json`` holds)."""
    metrics = dict(result.metrics)
    split = metrics.pop("split", None)
    out: dict[str, Any] = {
        "method": result.method,
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
        "start_metrics": metrics.get("start_metrics"),
        "trail": [list(point) for point in result.trail],
        "split": {k: v for k, v in (split or {}).items() if k not in ("forget", "retain")},
    }
    return out


def sweep_strength(
    method: str | UnlearningMethod, values: list[float], *, target: str | float | None = "test", **kwargs: Any
) -> dict[str, Any]:
    """For one-shot methods (``iterative = False``): run once per strength value, weakest first.

    Steps-to-target does not apply to a method that takes no optimizer steps; the analogue is the
    first strength (in the order given) whose result reaches the target forget accuracy. Returns the
    points and that ``strength_to_target`` (``None`` if no value reaches it).
    """
    name, method_obj = _method(method)
    knob = method_obj.strength_param
    if knob is None:
        raise UsageError(f"method {name!r} declares no strength parameter to sweep")
    if not values:
        raise UsageError("give at least one strength value to sweep")
    hparams = dict(kwargs.pop("hparams", None) or {})
    points, reached_at = [], None
    for value in values:
        result = unlearn(method_obj, hparams={**hparams, knob: value}, target="none", **kwargs)
        start = result.metrics["start_metrics"]
        threshold = resolve_target(target, start, kwargs.get("retrain_metrics"))
        reached = threshold is not None and result.metrics["forget_acc"] <= threshold
        points.append({"strength": value, "reached": reached, "target_forget_acc": threshold,
                       **{k: result.metrics[k] for k in ("forget_acc", "retain_acc", "test_acc") if k in result.metrics}})
        if reached and reached_at is None:
            reached_at = value
    return {"method": name, "strength_param": knob, "points": points, "strength_to_target": reached_at}
