"""``analyse_run``: θ_pre vs θ_grok of one preset run, on the same forget/retain/test split.

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
from torch.utils.data import TensorDataset

from .._resolve import build_model, load_checkpoint, run_dir_of
from ..errors import UsageError
from ..vision.domain import vision_run_data
from ._cka import default_layer, linear_cka, representations
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


def _whole(loader: Any) -> Any:
    """An in-memory loader as one (x, y) batch: full-batch gradients and HVPs instead of ~30 small ones."""
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[0], dataset.tensors[1]
    return loader


def _analyse_start(model: nn.Module, data: Any, loss_fn: Any, *, iters: int, tol: float, probes: int, per_example: int, seed: int) -> dict[str, Any]:
    from ..vision.metrics import accuracy

    forget, retain, train = _whole(data.forget), _whole(data.retain), _whole(data.full_train)
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
        "forget_acc": accuracy(model, data.forget),
        "retain_acc": accuracy(model, data.retain),
        "test_acc": accuracy(model, data.test) if data.test is not None else None,
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


def _cka_sets(a: nn.Module, b: nn.Module, data: Any, layer: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("test", "retain", "forget"):
        loader = getattr(data, name)
        if loader is not None:
            x, y = representations(a, loader, layer), representations(b, loader, layer)
            out[name] = linear_cka(x, y)
            out[f"{name}_unbiased"] = linear_cka(x, y, unbiased=True)
    return out


def _unlearned(
    run_dir: Any, methods: Sequence[str] | Mapping[str, Mapping[str, nn.Module]], *, forget_rate: float, seed: int,
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
    forget_rate: float = 0.15,
    seed: int = 0,
    methods: Sequence[str] | Mapping[str, Mapping[str, nn.Module]] | None = None,
    loss: str = "preset",
    layer: str | None = None,
    iters: int = 100,
    tol: float = 1e-3,
    probes: int = 30,
    per_example: int = 64,
    unlearn_budget: int = 50,
    target: str | float | None = "test",
    fallback: str | None = None,
) -> dict[str, Any]:
    """Gradient alignment, CKA and curvature at θ_pre vs θ_grok of a preset run (JSON-serialisable dict).

    The forget/retain/test split is :func:`grokplug.vision.domain.vision_run_data` (``forget_rate``,
    ``seed``), i.e. the one ``grokplug.unlearn`` uses. ``loss``: the preset's training loss, or
    ``"ce"``/``"mse"``. Curvature (``iters``/``tol`` power iteration, ``probes`` Hutchinson probes) is on
    the whole train set. ``layer`` names the module for CKA (default: the input of the classifier).

    ``methods``: method names to run from both starts with ``grokplug.unlearn`` (at most
    ``unlearn_budget`` optimizer steps where the method has ``max_steps``, stopping at ``target``),
    or a mapping ``{method: {"pre": model, "grok": model}}`` of already unlearned models. For each,
    ``unlearning[method][start]`` holds CKA(start, unlearned) on test/retain/forget inputs.
    ``fallback`` (e.g. ``"final"``) stands in for a phase the run lacks (no θ_grok in a run that did
    not grok); ``starts[s]["phase"]`` then says which checkpoint was used.
    """
    began = time.perf_counter()
    run = run_dir_of(run_dir)
    config = run.config
    report = run.report()
    data = vision_run_data(run_dir, forget_rate=forget_rate, seed=seed)
    loss_fn = preset_loss_fn(config, data.num_classes, loss)
    models: dict[str, nn.Module] = {}
    refs: dict[str, Any] = {}
    for start in STARTS:
        models[start] = build_model(run_dir)
        refs[start] = load_checkpoint(models[start], run_dir, start, fallback=fallback)
        models[start].eval()
    x0 = next(iter(data.forget))[0][:2]
    layer_name = layer or default_layer(models["pre"], x0)
    result: dict[str, Any] = {
        "run_dir": str(run.path),
        "preset": config.get("preset"),
        "label": report.label if report is not None else None,
        "t_mem": report.t_mem if report is not None else None,
        "t_gen": report.t_gen if report is not None else None,
        "forget_rate": forget_rate,
        "seed": seed,
        "loss": config.get("loss", "ce") if loss == "preset" else loss,
        "cka_layer": layer_name if layer else f"{layer_name} (input)",
        "settings": {"iters": iters, "tol": tol, "probes": probes, "per_example": per_example},
        "starts": {},
    }
    for start in STARTS:
        stats = _analyse_start(models[start], data, loss_fn, iters=iters, tol=tol, probes=probes, per_example=per_example, seed=seed)
        result["starts"][start] = {"step": refs[start].step, "phase": refs[start].phase, **stats}
    result["cka_pre_vs_grok"] = _cka_sets(models["pre"], models["grok"], data, layer)
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
                start: {**summary, "cka_start_vs_unlearned": _cka_sets(models[start], model, data, layer)}
                for start, (model, summary) in starts.items()
            }
    result["wall_s"] = time.perf_counter() - began
    return _clean(result)
