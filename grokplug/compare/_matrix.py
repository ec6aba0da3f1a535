"""Running the cells of a compare matrix, with a resumable per-cell cache.

A *cell* is one unlearning run: (method, start, seed, forget rate). It runs the method's **full
budget** (``stop_at_target=False``) with the step monitor evaluating forget and retain accuracy after
**every** update (``eval_every=1``), so the trail gives the exact steps-to-target for every target
level from one run. At the first step where the *primary* target holds, a grokplug plugin evaluates
the model fully (test accuracy, MIA): the collateral damage at matched forgetting. A one-shot method
takes no steps, so its cell also runs :func:`grokplug.sweep_strength` over the method's
``strength_sweep`` (weakest first, stopping at the first strength that reaches the primary target):
its ``at_target`` is the result at that weakest strength, and the strengths are recorded in ``sweep``.

Cache: ``<out>/cells/<key>.json`` holds an ``input_hash`` over everything the result depends on
(start checkpoint sha256, run config, method + class + resolved hyperparameters, profile, seed, forget
rate, split hashes, targets, the retrain reference, ``CELL_VERSION``, grokplug's version). A cell is
reused only when the hash matches; otherwise it is recomputed and replaced atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokplug.hooks import hookimpl

from .._atomic import sha256_json, write_json_atomic
from .._domain import UnlearningDomain
from .._paths import safe_filename
from .._types import CheckpointRef
from .._unlearning_method import UnlearningMethod
from .._version import __version__
from ..errors import DivergedError
from ._steps import step_flags, target_rows

#: Bump when the way a cell is computed or stored changes: every cached cell is then recomputed.
CELL_VERSION = 4  # 3: one-shot cells sweep their strength; 4: a `pre-matched` compare unlearns from that rule
EVAL_EVERY = 1
STARTS = ("pre", "grok")


@dataclass(frozen=True)
class CellSpec:
    method: str
    start: str
    seed: int
    forget_rate: float

    @property
    def key(self) -> str:
        return safe_filename(f"{self.method}__{self.start}__seed{self.seed}__rate{self.forget_rate:g}")


@dataclass
class MatrixContext:
    """What every cell of one compare call shares."""

    run_path: Path
    run_config: dict[str, Any]
    domain: UnlearningDomain
    refs: dict[str, CheckpointRef]
    methods: dict[str, UnlearningMethod]
    overrides: dict[str, dict[str, Any]]
    hparams: dict[str, dict[str, Any]]
    targets: list[str]
    primary: str
    profile: str
    fallback: str | None
    cells_dir: Path
    recompute: bool = False
    #: per one-shot method: the strengths its cells sweep, weakest first
    strengths: dict[str, tuple[float, ...]] = field(default_factory=dict)
    retrain_cache: dict[tuple[int, float], dict[str, Any]] = field(default_factory=dict)


def json_safe(obj: Any) -> Any:
    """JSON-safe: non-finite floats become ``None`` (never a bare NaN in results)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


_clean = json_safe  # this module's own short name


def _read_cached(path: Path, input_hash: str) -> dict[str, Any] | None:
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or damaged: recompute
    return cell if isinstance(cell, dict) and cell.get("input_hash") == input_hash else None


def _data(ctx: MatrixContext, spec: CellSpec) -> Any:
    # Built fresh per cell: loaders carry shuffling generators, so two runs must never share one.
    return ctx.domain.run_data(ctx.run_path, seed=spec.seed, options=ctx.domain.compare_options(spec.forget_rate))


def _split(ctx: MatrixContext, data: Any) -> dict[str, Any]:
    info = ctx.domain.split_info(data)
    if not info or "forget_sha256" not in info:
        raise DivergedError(f"domain {ctx.domain.name!r} gives no split hashes; compare cannot pair the starts")
    return info


def _scalars(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))} if metrics else None


def retrain_metrics(ctx: MatrixContext, seed: int, rate: float) -> dict[str, Any] | None:
    """The domain's retrain/retain reference for (seed, rate), cached like a cell; ``None`` unless a target needs it."""
    if "retrain" not in ctx.targets:
        return None
    if (seed, rate) in ctx.retrain_cache:
        return ctx.retrain_cache[(seed, rate)]
    data = _data(ctx, CellSpec("retrain", "none", seed, rate))
    split = _split(ctx, data)
    inputs = {"kind": "retrain", "cell_version": CELL_VERSION, "grokplug_version": __version__,
              "run_config_sha256": sha256_json(ctx.run_config), "seed": seed, "forget_rate": rate,
              "forget_sha256": split["forget_sha256"], "retain_sha256": split["retain_sha256"]}
    input_hash = sha256_json(inputs)
    path = ctx.cells_dir / f"retrain__seed{seed}__rate{rate:g}.json"
    cached = None if ctx.recompute else _read_cached(path, input_hash)
    metrics = cached["metrics"] if cached else dict(ctx.domain.reference(
        ctx.run_path, data, seed=seed, target="retrain", options=ctx.domain.compare_options(rate)) or {})
    if not cached:
        write_json_atomic(path, _clean({"input_hash": input_hash, "inputs": inputs, "metrics": metrics}))
    ctx.retrain_cache[(seed, rate)] = metrics
    return metrics


def cell_inputs(ctx: MatrixContext, spec: CellSpec, split: Mapping[str, Any], retrain: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything a cell's result depends on; its hash decides whether a cached cell is reused."""
    method = ctx.methods[spec.method]
    ref = ctx.refs[spec.start]
    return {
        "cell_version": CELL_VERSION, "grokplug_version": __version__, "eval_every": EVAL_EVERY,
        "run_config_sha256": sha256_json(ctx.run_config),
        "start": spec.start, "start_step": ref.step, "start_sha256": ref.sha256,
        "method": spec.method, "method_class": f"{type(method).__module__}.{type(method).__qualname__}",
        "hparams": ctx.hparams[spec.method], "profile": ctx.profile,
        "seed": spec.seed, "forget_rate": spec.forget_rate,
        "domain": ctx.domain.name, "forget_sha256": split["forget_sha256"], "retain_sha256": split["retain_sha256"],
        "targets": list(ctx.targets), "primary": ctx.primary,
        "retrain": _scalars(retrain),
        "strength_sweep": None if method.iterative else list(ctx.strengths.get(spec.method, ())),
    }


class _AtTarget:
    """A temporary plugin: full metrics at the first step the primary target holds."""

    def __init__(self, ctx: MatrixContext, data: Any, seed: int, reference: Mapping[str, Any] | None,
                 options: Mapping[str, Any]) -> None:
        self.ctx, self.data, self.seed, self.reference, self.options = ctx, data, seed, reference, options
        self.snapshot: dict[str, Any] | None = None

    @hookimpl
    def grokplug_on_unlearn_step(self, context: Any, step: int, metrics: Mapping[str, float]) -> None:
        threshold = context.config.get("target_forget_acc")
        if self.snapshot is None and threshold is not None and metrics["forget_acc"] <= threshold:
            values = self.ctx.domain.evaluate(context.model, self.data, seed=self.seed, start=None,
                                              reference=self.reference, options=self.options)
            self.snapshot = {**(_scalars(values) or {}), "step": step}


def _compute(ctx: MatrixContext, spec: CellSpec, data: Any, retrain: Mapping[str, Any] | None) -> dict[str, Any]:
    from .._unlearn import unlearn
    from ..plugins import get_plugin_manager

    method = ctx.methods[spec.method]
    options = ctx.domain.compare_options(spec.forget_rate)
    options.pop("forget_rate", None)  # the data is given: only how to evaluate and run is left
    watcher = _AtTarget(ctx, data, spec.seed, retrain, options)
    pm = get_plugin_manager()
    name = f"grokplug-compare-at-target-{id(watcher)}"
    pm.register(watcher, name=name)
    try:
        result = unlearn(
            method, splits=data, source=ctx.run_path, start=_start_phase(ctx, spec), seed=spec.seed,
            target=ctx.primary if method.iterative else "none", hparams=ctx.overrides.get(spec.method),
            profile=ctx.profile, eval_every=EVAL_EVERY, stop_at_target=False, fallback=ctx.fallback,
            retrain_metrics=retrain, **options,
        )
    finally:
        pm.unregister(name=name)
    start_metrics = _scalars(result.metrics["start_metrics"]) or {}
    final = {k: v for k, v in result.metrics.items() if k in (*ctx.domain.damage_metrics, "ua_optml") and isinstance(v, (int, float))}
    at_target = None
    if watcher.snapshot is not None and method.iterative:
        at_target = dict(watcher.snapshot)
        for key in ("retain_acc", "test_acc", "gen_acc"):  # drops: start − at target (positive = damage)
            if key in at_target and key in start_metrics:
                at_target[key.replace("_acc", "_drop")] = start_metrics[key] - at_target[key]
    trail = [[int(s), float(f), float(r)] for s, f, r in result.trail]
    rows = target_rows(ctx.targets, trail, start_metrics, retrain, method.iterative, final["forget_acc"])
    sweep = None if method.iterative else _sweep(ctx, spec, retrain)
    if sweep is not None and sweep["strength_to_target"] is not None:
        point = next(p for p in sweep["points"] if p["strength"] == sweep["strength_to_target"])
        keys = (*ctx.domain.damage_metrics, "ua_optml")
        at_target = {**{k: v for k, v in point.items() if k in keys}, "strength": point["strength"]}
    return {"status": "ok", "error": None, "total_steps": result.total_steps, "start_metrics": start_metrics,
            "final": final, "at_target": at_target, "targets": rows, "flags": step_flags(rows, method.iterative),
            "trail": trail if method.iterative else [], "sweep": sweep}


def _start_phase(ctx: MatrixContext, spec: CellSpec) -> str:
    """The phase to unlearn from: the θ_pre rule compare was asked for (``pre-matched`` too), else the start."""
    return ctx.refs["pre"].phase if spec.start == "pre" else spec.start


def _sweep(ctx: MatrixContext, spec: CellSpec, retrain: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The one-shot cell's strength sweep toward the primary target (``None``: the method declares none).

    Each strength runs on freshly built data (``unlearn`` builds it from the forget rate and seed: the
    same split the cell was paired on), so no point depends on the loaders' state after another.
    """
    from .._sweep import sweep_strength

    strengths = list(ctx.strengths.get(spec.method, ()))
    if not strengths:
        return None
    info = sweep_strength(
        ctx.methods[spec.method], strengths, target=ctx.primary, stop_at_target=True, source=ctx.run_path,
        start=_start_phase(ctx, spec), seed=spec.seed, hparams=ctx.overrides.get(spec.method), profile=ctx.profile,
        fallback=ctx.fallback, retrain_metrics=retrain, **ctx.domain.compare_options(spec.forget_rate),
    )
    return {"strength_param": info["strength_param"], "strengths": strengths, "target": ctx.primary,
            "points": info["points"], "strength_to_target": info["strength_to_target"]}


@dataclass
class PreparedCell:
    """A cell's data and input hash, before it is computed or read back from the cache."""

    spec: CellSpec
    data: Any
    split: dict[str, Any]
    retrain: dict[str, Any] | None
    inputs: dict[str, Any]
    input_hash: str
    path: Path


def prepare_cell(ctx: MatrixContext, spec: CellSpec) -> PreparedCell:
    data = _data(ctx, spec)
    split_info = _split(ctx, data)
    retrain = retrain_metrics(ctx, spec.seed, spec.forget_rate)
    inputs = cell_inputs(ctx, spec, split_info, retrain)
    return PreparedCell(spec, data, split_info, retrain, inputs, sha256_json(_clean(inputs)),
                        ctx.cells_dir / f"{spec.key}.json")


def read_cell(prepared: PreparedCell) -> dict[str, Any] | None:
    """The cached cell if its input hash matches (marked ``reused``), else ``None``."""
    cached = _read_cached(prepared.path, prepared.input_hash)
    if cached is not None:
        cached["reused"] = True
    return cached


def run_cell(ctx: MatrixContext, spec: CellSpec) -> dict[str, Any]:
    """The cell's result: from the cache when its inputs' hash matches, else computed and stored."""
    prepared = prepare_cell(ctx, spec)
    cached = None if ctx.recompute else read_cell(prepared)
    return cached if cached is not None else compute_cell(ctx, prepared)


def compute_cell(ctx: MatrixContext, prepared: PreparedCell) -> dict[str, Any]:
    """Run the cell and store it atomically in the cache (a cell is on disk whole or not at all)."""
    spec = prepared.spec
    started = time.perf_counter()
    method = ctx.methods[spec.method]
    try:
        body = _compute(ctx, spec, prepared.data, prepared.retrain)
    except DivergedError as exc:  # a result, not a crash: recorded, flagged and excluded from the stats
        body = {"status": "diverged", "error": str(exc), "total_steps": None, "start_metrics": None, "final": None,
                "at_target": None, "targets": {}, "flags": ["diverged"], "trail": [], "sweep": None}
    split = {k: v for k, v in prepared.split.items() if k not in ("forget", "retain")}
    cell = {
        "key": spec.key, "input_hash": prepared.input_hash, "inputs": prepared.inputs, "reused": False,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "method": spec.method, "start": spec.start, "seed": spec.seed, "forget_rate": spec.forget_rate,
        "start_step": ctx.refs[spec.start].step, "start_sha256": ctx.refs[spec.start].sha256,
        "iterative": bool(method.iterative), "hparams": ctx.hparams[spec.method], "profile": ctx.profile,
        "split": split, **body,
    }
    cell = _clean(cell)
    write_json_atomic(prepared.path, cell)
    return cell
