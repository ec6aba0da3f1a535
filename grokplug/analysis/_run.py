"""``analyse_run``: θ_pre vs θ_grok of one preset run (vision or LLM), on the same forget/retain/test split.

The run's domain supplies the split, the loss and the representation (``UnlearningDomain.analysis_data``,
a :class:`grokplug.AnalysisData`): this package imports no domain package.

Train loss at θ_grok is typically 10²–10⁴× lower than at θ_pre, and cross-entropy curvature and
gradient norms scale with it, so raw λ_max / tr(H) / ‖ḡ‖ mostly measure the loss level. Every
curvature number therefore comes with scale-free versions and the train-loss ratio (§6.4 lesson 2).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._domain import AnalysisData
from .._resolve import build_model, load_checkpoint, run_dir_of
from ..errors import UsageError
from ._cka import linear_cka
from ._curvature import hessian_top_eigenvalue, hessian_trace
from ._gradients import grad_alignment

__all__ = ["analyse_run", "preset_loss_fn"]

STARTS = ("pre", "grok")


def preset_loss_fn(config: Mapping[str, Any], num_classes: int, loss: str = "preset") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The batch-mean loss to analyse: the preset's training loss (``"preset"``), ``"ce"`` or ``"mse"``."""
    from .._train import preset_loss

    if loss not in ("preset", "ce", "mse"):
        raise UsageError(f"loss must be 'preset', 'ce' or 'mse', got {loss!r}")
    cfg = dict(config) if loss == "preset" else {**config, "loss": loss}
    return lambda logits, y: preset_loss(cfg, logits, y, num_classes)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return a / b


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, tensors → floats, tuples → lists."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _weight_norm(model: nn.Module) -> float:
    return float(torch.sqrt(torch.stack([p.detach().double().square().sum() for p in model.parameters()]).sum()))


def _analyse_start(model: nn.Module, data: AnalysisData, *, iters: int, tol: float, probes: int, per_example: int, seed: int) -> dict[str, Any]:
    forget, retain, train, loss_fn = data.forget, data.retain, data.train, data.loss_fn
    align = grad_alignment(model, forget, retain, loss_fn, per_example=per_example, seed=seed)
    n_f, n_r = align["n_forget"], align["n_retain"]
    train_loss = (align["forget_loss"] * n_f + align["retain_loss"] * n_r) / (n_f + n_r)
    lam = hessian_top_eigenvalue(model, loss_fn, train, iters=iters, tol=tol, seed=seed, details=True)
    tr = hessian_trace(model, loss_fn, train, probes=probes, seed=seed, details=True)
    norm = _weight_norm(model)
    return {
        "train_loss": train_loss,
        "forget_loss": align["forget_loss"],
        "retain_loss": align["retain_loss"],
        "forget_acc": data.score(model, "forget"),
        "retain_acc": data.score(model, "retain"),
        "test_acc": data.score(model, "test") if data.test is not None else None,
        "weight_norm": norm,
        "grad_alignment": align,
        "curvature": {
            "data": "train",
            "lambda_max": lam["value"],
            "lambda_max_iterations": lam["iterations"],
            "lambda_max_converged": lam["converged"],
            "trace": tr["value"],
            "trace_stderr": tr["stderr"],
            "trace_probes": tr["probes"],
        },
        "scale_free": {
            "lambda_over_trace": _ratio(lam["value"], tr["value"]),
            "lambda_times_weight_norm_sq": lam["value"] * norm**2,
            "lambda_over_train_loss": _ratio(lam["value"], train_loss),
            "trace_over_train_loss": _ratio(tr["value"], train_loss),
            "forget_grad_norm_over_forget_loss": _ratio(align["forget_grad_norm"], align["forget_loss"]),
            "retain_grad_norm_over_retain_loss": _ratio(align["retain_grad_norm"], align["retain_loss"]),
        },
    }


def _cka_sets(a: nn.Module, b: nn.Module, data: AnalysisData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("test", "retain", "forget"):
        inputs = getattr(data, name)
        if inputs is not None:
            x, y = data.features(a, inputs), data.features(b, inputs)
            out[name] = linear_cka(x, y)
            out[f"{name}_unbiased"] = linear_cka(x, y, unbiased=True)
    return out


def _unlearned(
    run_dir: Any, methods: Sequence[str] | Mapping[str, Mapping[str, nn.Module]], *, forget_rate: float | None, seed: int,
    budget: int, target: str | float | None,
) -> dict[str, dict[str, tuple[nn.Module, dict[str, Any]]]]:
    """{method: {start: (unlearned model, summary)}}: given models, or runs of ``grokplug.unlearn``."""
    from .._unlearn import registered_method, unlearn

    if isinstance(methods, Mapping):
        return {str(m): {s: (model, {"given": True}) for s, model in starts.items() if s in STARTS} for m, starts in methods.items()}
    out: dict[str, dict[str, tuple[nn.Module, dict[str, Any]]]] = {}
    for method in methods:
        name, obj = registered_method(method)
        hparams = {"max_steps": budget} if "max_steps" in obj.defaults else {}
        out[name] = {}
        for start in STARTS:
            result = unlearn(obj, source=run_dir, start=start, seed=seed, forget_rate=forget_rate, hparams=hparams, target=target)
            summary = {k: result.metrics.get(k) for k in ("forget_acc", "retain_acc", "test_acc")}
            summary.update(steps_to_target=result.steps_to_target, total_steps=result.total_steps, hparams=hparams, target=target)
            out[name][start] = (result.model, summary)
    return out


def analyse_run(
    run_dir: str | os.PathLike[str],
    *,
    forget_rate: float | None = None,
    seed: int = 0,
    methods: Sequence[str] | Mapping[str, Mapping[str, nn.Module]] | None = None,
    loss: str = "preset",
    layer: str | None = None,
    iters: int = 100,
    tol: float = 1e-3,
    probes: int = 30,
    per_example: int = 64,
    unlearn_budget: int = 50,
    target: str | float | None = "default",
    fallback: str | None = None,
) -> dict[str, Any]:
    """Gradient alignment, CKA and curvature at θ_pre vs θ_grok of a preset run (JSON-serialisable dict).

    The run's domain supplies the forget/retain/test split for ``forget_rate`` and ``seed`` (the one
    ``grokplug.unlearn`` uses; vision default 0.15; TOFU-style runs: forget rates 0.01/0.05/0.1 = forget01/05/10, test = the
    held-out phrasings), the loss and the representation. ``loss``: the preset's training loss, or
    (vision) ``"ce"``/``"mse"``. Curvature (``iters``/``tol`` power iteration, ``probes`` Hutchinson
    probes) is on the whole train set (forget + retain). ``layer`` names the module for CKA (vision;
    default: the input of the classifier; LLM: the last hidden state averaged over answer tokens).

    ``methods``: method names to run from both starts with ``grokplug.unlearn`` (at most
    ``unlearn_budget`` optimizer steps where the method has ``max_steps``, stopping at ``target``, by
    default the domain's),
    or a mapping ``{method: {"pre": model, "grok": model}}`` of already unlearned models. For each,
    ``unlearning[method][start]`` holds CKA(start, unlearned) on test/retain/forget inputs.
    ``fallback`` (e.g. ``"final"``) stands in for a phase the run lacks (no θ_grok in a run that did
    not grok); ``starts[s]["phase"]`` then says which checkpoint was used.
    """
    began = time.perf_counter()
    from .._unlearn import run_domain

    run = run_dir_of(run_dir)
    config = run.config
    report = run.report()
    domain = run_domain(run_dir)
    data = domain.analysis_data(run_dir, seed=seed, options={"forget_rate": forget_rate, "loss": loss, "layer": layer})
    models: dict[str, nn.Module] = {}
    refs: dict[str, Any] = {}
    for start in STARTS:
        models[start] = build_model(run_dir)
        refs[start] = load_checkpoint(models[start], run_dir, start, fallback=fallback)
        if data.prepare_model is not None:
            models[start] = data.prepare_model(models[start])
        models[start].eval()
    result: dict[str, Any] = {
        "run_dir": str(run.path),
        "preset": config.get("preset"),
        "domain": domain.name,
        "label": report.label if report is not None else None,
        "t_mem": report.t_mem if report is not None else None,
        "t_gen": report.t_gen if report is not None else None,
        "forget_rate": forget_rate,
        "seed": seed,
        "loss": data.loss_name,
        "cka_layer": data.layer,
        "test_set": data.test_set if data.test is not None else None,
        "settings": {"iters": iters, "tol": tol, "probes": probes, "per_example": per_example},
        "starts": {},
    }
    for start in STARTS:
        stats = _analyse_start(models[start], data, iters=iters, tol=tol, probes=probes, per_example=per_example, seed=seed)
        result["starts"][start] = {"step": refs[start].step, "phase": refs[start].phase, **stats}
    result["cka_pre_vs_grok"] = _cka_sets(models["pre"], models["grok"], data)
    pre, grok = result["starts"]["pre"], result["starts"]["grok"]
    result["ratios_pre_over_grok"] = {
        "train_loss": _ratio(pre["train_loss"], grok["train_loss"]),
        "lambda_max": _ratio(pre["curvature"]["lambda_max"], grok["curvature"]["lambda_max"]),
        "trace": _ratio(pre["curvature"]["trace"], grok["curvature"]["trace"]),
        "forget_grad_norm": _ratio(pre["grad_alignment"]["forget_grad_norm"], grok["grad_alignment"]["forget_grad_norm"]),
        "abs_cos": _ratio(pre["grad_alignment"]["abs_cos"], grok["grad_alignment"]["abs_cos"]),
        **{f"{k}": _ratio(pre["scale_free"][k], grok["scale_free"][k]) for k in ("lambda_over_trace", "lambda_times_weight_norm_sq", "lambda_over_train_loss")},
    }
    if methods:
        result["unlearning"] = {}
        unlearned = _unlearned(run_dir, methods, forget_rate=forget_rate, seed=seed, budget=unlearn_budget, target=target)
        for method, starts in unlearned.items():
            result["unlearning"][method] = {
                start: {**summary, "cka_start_vs_unlearned": _cka_sets(models[start], model, data)}
                for start, (model, summary) in starts.items()
            }
    result["wall_s"] = time.perf_counter() - began
    return _clean(result)
