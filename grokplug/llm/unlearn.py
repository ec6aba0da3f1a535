"""``unlearn_llm``: run one LLM method from θ_pre or θ_grok of a tofu run, monitored, and evaluate it.

The LLM mirror of :func:`grokplug.unlearn`: the start checkpoint is loaded (hash-verified, only read),
the method's Trainer runs on open-unlearning batches (``ForgetRetainDataset`` + collator) with a
:class:`~grokplug.llm.monitor.TrainerStepMonitor` counting updates until the forget accuracy reaches the
target, and :func:`~grokplug.llm.evaluation.evaluate_tofu` scores the start and the result.

``forget_acc`` / ``retain_acc`` here are teacher-forced answer-token accuracies (OU's exact-memorization
score, mean over rows) on the forget and retain QA; ``gen_acc`` is the same on held-out phrasings of
retain authors' facts. ``retain_reference="auto"`` trains the preset on the retain split with the run's
recipe once (cached under ``<run>/reference/<retain split>/``): its TOFU evaluation feeds
``forget_quality``/``privleak`` and its forget accuracy is the ``"retrain"`` target.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._paths import check_output_dir, source_dirs
from .._resolve import Source, build_model, load_checkpoint, run_dir_of
from .._unlearn import _method
from .._unlearn_types import UnlearnContext, UnlearnResult
from ..errors import GrokplugError, UsageError
from ..plugins import get_plugin_manager
from ..vision.monitor import resolve_target

__all__ = ["LLMRunData", "cli_unlearn", "llm_run_data", "retain_reference", "unlearn_llm"]

REFERENCE_DIR = "reference"
MONITOR_RETAIN_ROWS = 100


class LLMRunData:
    """A tofu run's splits, tokenizer and the datasets one forget split needs."""

    def __init__(self, source: Source, forget_split: str = "forget10", *, splits: Any = None) -> None:
        from .qa import DataCollatorForSupervisedDataset, QADataset
        from .train import TOKENIZER_DIR, make_tokenizer, tofu_splits

        run = run_dir_of(source)
        self.run, self.config = run, dict(run.config)
        if not str(forget_split).startswith("forget") or not str(forget_split)[6:].isdigit():
            raise UsageError(f"forget_split must be forget01, forget05 or forget10, not {forget_split!r}")
        self.forget_split = str(forget_split)
        self.retain_split = f"retain{100 - int(self.forget_split[6:])}"
        self.splits = tofu_splits(self.config, run.seed or 0) if splits is None else splits
        self.tokenizer = make_tokenizer(self.config, self.splits, run.path if (run.path / TOKENIZER_DIR).exists() else None)
        max_length = int(self.config.get("max_length", 128))
        self.max_length = max_length
        self.forget = QADataset(self.splits[self.forget_split], self.tokenizer, max_length=max_length)
        self.retain = QADataset(self.splits[self.retain_split], self.tokenizer, max_length=max_length)
        self.collator = DataCollatorForSupervisedDataset(self.tokenizer)
        self.generalization = None
        if "generalization" in self.splits:  # held-out phrasings of retain authors' facts
            gen = self.splits["generalization"]
            n_retain_authors = len(self.splits[self.retain_split]) // 20
            keep = [i for i, a in enumerate(gen["author_index"]) if a < n_retain_authors]
            self.generalization = QADataset(gen.select(keep), self.tokenizer, max_length=max_length)

    def forget_dataset(self, item: str, seed: int) -> Any:
        """The forget items a method needs: plain QA, or ``{"original","alternate"}`` IDK pairs (IdkDPO)."""
        if item == "idk":
            from .qa import IdkQADataset

            return IdkQADataset(self.splits[self.forget_split], self.tokenizer, max_length=self.max_length, seed=seed)
        return self.forget

    def score(self, model: torch.nn.Module, which: str, limit: int | None = None) -> float:
        """Teacher-forced answer-token accuracy (mean over rows) on ``forget``, ``retain`` or ``generalization``."""
        from torch.utils.data import Subset

        from .train import answer_accuracy

        dataset = getattr(self, which)
        if limit is not None and len(dataset) > limit:
            dataset = Subset(dataset, range(limit))  # the monitor's cheap proxy: the first rows
        return float(answer_accuracy(model, dataset, self.collator)["row_token_acc"])

    def scores(self, model: torch.nn.Module) -> dict[str, float]:
        """``forget_acc``, ``retain_acc`` and (generated data) ``gen_acc`` on the full sets."""
        out = {"forget_acc": self.score(model, "forget"), "retain_acc": self.score(model, "retain")}
        if self.generalization is not None:
            out["gen_acc"] = self.score(model, "generalization")
        return out


def llm_run_data(source: Source, forget_split: str = "forget10") -> LLMRunData:
    return LLMRunData(source, forget_split)


def _is_main() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_rank() == 0


def retain_reference(source: Source, forget_split: str = "forget10", *, data: LLMRunData | None = None,
                     progress: bool = False, eval_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The retain ("oracle") model of a tofu run: trained once with the run's recipe on the retain split.

    Cached in ``<run>/reference/<retain split>/`` (a tracked run of its own) with its TOFU evaluation
    for ``forget_split`` in ``tofu_eval-<forget split>.json``. Returns that evaluation plus its
    ``forget_acc``/``retain_acc``/``gen_acc`` scores (under ``"scores"``).
    """
    from .._atomic import write_json_atomic
    from .._rundir import RunDir
    from .._train import train_preset
    from .evaluation import evaluate_tofu

    data = data or LLMRunData(source, forget_split)
    run = data.run
    ref_dir = run.path / REFERENCE_DIR / data.retain_split
    cached = ref_dir / f"tofu_eval-{data.forget_split}.json"
    wanted = {"max_length": data.max_length, **dict(eval_kwargs or {})}
    if cached.is_file():
        stored = json.loads(cached.read_text())
        if stored.get("eval_kwargs") == json.loads(json.dumps(wanted)):
            return stored
    if not (RunDir.exists(ref_dir) and RunDir(ref_dir).status == "finished"):
        overrides = {k: v for k, v in data.config.items() if k not in ("preset", "control", "vocab_size")}
        overrides.update(train_split=data.retain_split, stop_after_settled=None)
        train_preset(str(data.config["preset"]), ref_dir, seed=run.seed or 0, overrides=overrides,
                     overwrite=RunDir.exists(ref_dir), progress=progress)
    model = build_model(ref_dir)
    load_checkpoint(model, ref_dir, "final")
    result = evaluate_tofu(model, data.tokenizer, data.splits, forget_split=data.forget_split, **wanted)
    result["scores"] = data.scores(model)
    result["eval_kwargs"] = wanted
    if _is_main():
        write_json_atomic(cached, result)
    return result


def _summary(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar TOFU metrics of an :func:`evaluate_tofu` result (no per-index values, no provenance)."""
    return {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) or v is None}


def unlearn_llm(
    method: str | Any,
    source: Source,
    *,
    start: str = "grok",
    forget_split: str = "forget10",
    lora: bool | Mapping[str, Any] = False,
    seed: int = 0,
    hparams: Mapping[str, Any] | None = None,
    profile: str = "offline",
    target: str | float | None = "retrain",
    eval_every: int = 1,
    stop_at_target: bool = True,
    fallback: str | None = None,
    retain_reference_eval: Mapping[str, Any] | str | None = "auto",
    evaluate: bool = True,
    eval_kwargs: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    accelerator: Any = None,
    data: LLMRunData | None = None,
) -> UnlearnResult:
    """Run the LLM ``method`` from the ``start`` checkpoint of the tofu run ``source`` and measure it.

    :param lora: ``True`` or a dict of ``LoraConfig`` arguments: unlearn through a LoRA adapter (the
        start weights stay frozen; ``output_dir`` then receives the adapter, not the full model).
    :param target: forget-accuracy threshold counted by the monitor: a number, ``"frac:F"`` (F × the
        start's forget acc), ``"retrain"`` (the retain model's forget acc) or ``None``.
    :param retain_reference_eval: ``"auto"`` (train/cached, see :func:`retain_reference`), an
        :func:`evaluate_tofu` result (or its JSON path), or ``None`` (no forget_quality).
    :param evaluate: run :func:`evaluate_tofu` on the start and the result (slow part on CPU).
    :param accelerator: only read for the process layout; the Trainer places the model itself.
    """
    from .monitor import TrainerStepMonitor

    if output_dir is not None:  # refused before any work: never into the source run, never over a file
        check_output_dir(output_dir, sources=source_dirs(source), what="output_dir", must_be_empty=True)
    name, method_obj = _method(method)
    if getattr(method_obj, "domain", None) != "llm":
        raise UsageError(f"method {name!r} is not an LLM method (domain {getattr(method_obj, 'domain', '?')!r})")
    params = method_obj.hyperparameters(profile, **dict(hparams or {}))
    if "seed" not in (hparams or {}):
        params["seed"] = seed
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and "per_device_train_batch_size" not in (hparams or {}):  # keep the effective batch
        batch = int(params.get("per_device_train_batch_size", 8))
        params["per_device_train_batch_size"] = max(1, batch // world)
    torch.manual_seed(seed)
    data = data or LLMRunData(source, forget_split)
    model = build_model(source)
    ref = load_checkpoint(model, source, start, fallback=fallback)
    eval_kwargs = {"max_length": data.max_length, **dict(eval_kwargs or {})}
    reference = None
    if retain_reference_eval == "auto":
        reference = retain_reference(source, forget_split, data=data, eval_kwargs=eval_kwargs)
    elif isinstance(retain_reference_eval, (str, os.PathLike)):
        reference = json.loads(Path(retain_reference_eval).read_text())
    elif retain_reference_eval is not None:
        reference = dict(retain_reference_eval)
    start_scores = data.scores(model)
    retrain_scores = (reference or {}).get("scores")
    if target == "retrain" and retrain_scores is None:
        raise UsageError("target 'retrain' needs the retain model (retain_reference_eval='auto' or its evaluation)")
    threshold = resolve_target(target, start_scores, retrain_scores)
    start_eval = _evaluate(model, data, reference, eval_kwargs, run_cache=data.run.path) if evaluate else None
    if lora:
        from .lora import wrap_lora

        model = wrap_lora(model, lora)
    pm = get_plugin_manager()
    config = {"start": start, "seed": seed, "hparams": params, "target": target, "target_forget_acc": threshold,
              "forget_split": data.forget_split, "lora": lora if not isinstance(lora, Mapping) else dict(lora),
              "world_size": world, "profile": profile, "retrain_metrics": retrain_scores}
    context = UnlearnContext(method=name, model=model, start=ref, seed=seed, config=config, accelerator=accelerator)
    pm.before_unlearn(context)
    monitor = TrainerStepMonitor(  # retain is tracked on its first MONITOR_RETAIN_ROWS rows (cost per eval)
        lambda m: data.score(m, "forget"), lambda m: data.score(m, "retain", MONITOR_RETAIN_ROWS), target=threshold,
        eval_every=eval_every, stop_at_target=stop_at_target, context=context,
    )
    from .methods import LLMUnlearnData

    unlearn_data = LLMUnlearnData(forget=data.forget_dataset(getattr(method_obj, "forget_item", "qa"), seed),
                                  retain=data.retain, tokenizer=data.tokenizer, collator=data.collator, seed=seed)
    met = threshold is not None and start_scores["forget_acc"] <= threshold
    if met and stop_at_target:  # nothing to do: the start already meets the target
        monitor.trail, monitor.met_at_start, monitor.steps_to_target = [(0, start_scores["forget_acc"], start_scores["retain_acc"])], True, 0
        final = model
    else:
        on_cpu = not torch.cuda.is_available() or (accelerator is not None and accelerator.device.type == "cpu")
        extra = {"use_cpu": True} if on_cpu and "use_cpu" not in params else {}  # else the Trainer drops the
        # process group it finds (a CPU run under `accelerate launch`) and every rank believes it is rank 0
        with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its log dicts: stdout stays the caller's
            returned = method_obj.run(model, unlearn_data, callbacks=[monitor], training_args=extra, **params)
        final = returned if isinstance(returned, torch.nn.Module) else model
    final.eval()
    scores = data.scores(final)
    if any(v != v for v in scores.values()):  # NaN: never pass it off as a result
        raise GrokplugError(f"unlearning with {name!r} produced NaN scores; no result was written")
    metrics: dict[str, Any] = dict(scores)
    final_eval = _evaluate(final, data, reference, eval_kwargs) if evaluate else None
    if final_eval is not None:
        metrics.update(_summary(final_eval))
    metrics.update(start_metrics={**start_scores, **(_summary(start_eval) if start_eval else {})},
                   target_forget_acc=threshold, met_at_start=monitor.met_at_start or met,
                   retain_reference={k: reference.get(k) for k in ("forget_quality", "model_utility", "scores")} if reference else None)
    result = UnlearnResult(
        model=final, method=name, start=ref, metrics=metrics, steps_to_target=monitor.steps_to_target,
        steps_applicable=True, total_steps=monitor.steps, stopped_early=monitor.stopped_early,
        trail=list(monitor.trail), config=config,
    )
    pm.after_unlearn(context, result)
    if output_dir is not None:
        if _is_main():
            _write_output(Path(output_dir), final, result, {"start": start_eval, "final": final_eval}, lora=bool(lora))
        result.output_dir = Path(output_dir)
    return result


def _evaluate(model: torch.nn.Module, data: LLMRunData, reference: Mapping[str, Any] | None,
              eval_kwargs: Mapping[str, Any], run_cache: Path | None = None) -> dict[str, Any]:
    from .evaluation import evaluate_tofu

    cache = None
    if run_cache is not None and _is_main():
        cache = run_cache / REFERENCE_DIR / "eval_cache"  # start evaluations are shared by every method
    return evaluate_tofu(model, data.tokenizer, data.splits, forget_split=data.forget_split,
                         retain_reference=reference, cache_dir=cache, **dict(eval_kwargs))


def _write_output(out: Path, model: Any, result: UnlearnResult, evaluations: Mapping[str, Any], *, lora: bool) -> None:
    """The unlearned weights (full model, or the LoRA adapter) + result.json + tofu_eval.json, atomically."""
    from safetensors.torch import save_file

    from .._store import snapshot_state_dict

    if out.exists() and any(out.iterdir()):
        raise UsageError(f"output directory {out} already exists and is not empty; choose a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if lora:
            from .lora import save_adapter

            save_adapter(model, tmp / "adapter")
        else:
            save_file(snapshot_state_dict(model), str(tmp / "model.safetensors"))
        info = llm_result_to_dict(result)
        (tmp / "result.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        (tmp / "tofu_eval.json").write_text(json.dumps(dict(evaluations), indent=2, default=str) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def llm_result_to_dict(result: UnlearnResult) -> dict[str, Any]:
    """:func:`grokplug._unlearn.result_to_dict` plus the LLM fields (forget split, LoRA options)."""
    from .._unlearn import result_to_dict

    info = result_to_dict(result)
    info.update(forget_split=result.config.get("forget_split"), lora=result.config.get("lora"))
    return info


def cli_unlearn(args: Any) -> int:
    """``grokplug unlearn RUN --method <llm method>``: the CLI's LLM path (the default target is ``retrain``)."""
    from ..cli import _hparams

    if args.forget_rate is not None or args.forget_class:
        raise UsageError("--forget-rate/--forget-class are for vision runs; LLM methods take --forget-split")
    target = "retrain" if args.target == "test" else args.target  # "test" has no LLM meaning
    with contextlib.redirect_stdout(sys.stderr):  # the retain model's training may print too
        result = unlearn_llm(args.method, args.run_dir, start=args.start, forget_split=args.forget_split,
                             lora=args.lora, seed=args.seed, hparams=_hparams(args.set), profile=args.profile,
                             target=target, fallback=args.fallback, output_dir=args.out)
    info = llm_result_to_dict(result)
    from .._advice import note_for_result
    from ..plugins import get_plugin_manager

    note = note_for_result(get_plugin_manager().methods.get(args.method), info)
    if args.json:
        print(json.dumps({**info, "note": note}, indent=2, default=str))
        return 0
    steps = info["steps_to_target"]
    print(f"method {info['method']} from θ_{info['start']} (step {info['start_step']}) on {args.forget_split}"
          f"{' via LoRA' if args.lora else ''}, target forget_acc ≤ {info['target_forget_acc']}")
    print(f"steps_to_target: {steps if steps is not None else 'not reached'}  (updates run: {info['total_steps']})")
    for key in ("forget_acc", "retain_acc", "gen_acc", "forget_quality", "model_utility", "forget_Q_A_Prob",
                "forget_Q_A_ROUGE", "forget_truth_ratio", "privleak"):
        if info.get(key) is not None:
            print(f"{key:<19} {info[key]:.4g}")
    if note:
        print(note)
    if args.out:
        print(f"written: {args.out}")
    return 0
