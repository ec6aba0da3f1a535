"""The LLM domain: what the unlearning orchestrator needs for causal LMs on TOFU-style runs (``grokplug.hooks.llm``).

* data: a tofu run's splits for one forget split (:class:`~grokplug.llm.run_data.LLMRunData`), or the
  caller's :class:`~grokplug.llm.methods.LLMUnlearnData` (then the caller gives the probe);
* probe: answer-token accuracy on the forget set and on the first ``MONITOR_RETAIN_ROWS`` retain rows;
* evaluation: the scores on the full sets plus the TOFU metrics (the registered ``evaluate_tofu``);
* reference: the retain model, trained only when the ``retrain`` target needs it or ``forget_quality``
  is asked for, and otherwise reused from the run dir when it is there;
* running: the method's Trainer with :class:`~grokplug.llm.monitor.TrainerStepMonitor` as a callback,
  optionally through LoRA (then only the adapter is saved).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from .._domain import AnalysisData, MonitorSettings, RunOutcome, UnlearningDomain
from .._monitor import Probe
from ..errors import DivergedError
from ..plugins import get_plugin_manager
from .run_data import LLMRunData, forget_split_of, reference_root, retain_only_reference

__all__ = ["MONITOR_RETAIN_ROWS", "LLMDomain"]

MONITOR_RETAIN_ROWS = 100


def _summary(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar TOFU metrics of an ``evaluate_tofu`` result (no per-index values, no provenance)."""
    return {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) or v is None}


class LLMDomain(UnlearningDomain):
    """Causal LMs unlearned with HF Trainer methods on TOFU-style QA."""

    name: ClassVar[str] = "llm"
    description: ClassVar[str] = "causal LMs on TOFU-style runs: forget splits, Trainer monitor, TOFU metrics"
    options: ClassVar[frozenset[str]] = frozenset({
        "forget_split", "forget_rate", "lora", "retain_reference_eval", "forget_quality", "evaluate", "eval_kwargs",
        "callbacks", "training_args", "trainer_output_dir",
    })
    default_target: ClassVar[str | None] = "retrain"
    default_forget_rates: ClassVar[tuple[float, ...]] = (0.1,)
    report_keys: ClassVar[tuple[str, ...]] = (
        "forget_acc", "retain_acc", "gen_acc", "forget_quality", "model_utility", "forget_Q_A_Prob",
        "forget_Q_A_ROUGE", "forget_truth_ratio", "privleak",
    )
    damage_metrics: ClassVar[tuple[str, ...]] = (
        "forget_acc", "retain_acc", "gen_acc", "retain_drop", "gen_drop", "model_utility", "forget_quality",
        "forget_Q_A_Prob", "forget_Q_A_ROUGE", "privleak",
    )

    compare_columns: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("at_target", "retain_acc", "retain acc @target"), ("at_target", "retain_drop", "retain drop @target"),
        ("at_target", "gen_drop", "gen drop @target"), ("final", "forget_acc", "final forget"),
        ("final", "retain_acc", "final retain"), ("final", "gen_acc", "final gen"),
        ("final", "model_utility", "model utility"), ("final", "forget_quality", "forget quality"),
        ("final", "forget_Q_A_Prob", "forget Q_A prob"),
    )

    # -- data ----------------------------------------------------------------------------------

    @staticmethod
    def forget_split(options: Mapping[str, Any]) -> str:
        return forget_split_of(options)

    def run_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> LLMRunData:
        return LLMRunData(source, self.forget_split(options))

    def analysis_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> AnalysisData:
        from .analysis import llm_analysis_data

        return llm_analysis_data(source, seed=seed, **options)

    def compare_options(self, forget_rate: float) -> dict[str, Any]:
        return {"forget_rate": forget_rate, "eval_kwargs": {"max_new_tokens": 12, "batch_size": 16}}

    def probe(self, data: Any) -> Probe | None:
        if not isinstance(data, LLMRunData):
            return None  # the caller's own data: the caller gives the probe

        def probe(model: Any) -> dict[str, float]:
            return {"forget_acc": data.score(model, "forget"), "retain_acc": data.score(model, "retain", MONITOR_RETAIN_ROWS)}

        return probe

    # -- evaluation ----------------------------------------------------------------------------

    def reference(self, source: Any, data: Any, *, seed: int, target: Any,
                  options: Mapping[str, Any]) -> Mapping[str, Any] | None:
        given = options.get("retain_reference_eval", "auto")
        if not isinstance(data, LLMRunData) or given is None:
            evaluation = None
        elif isinstance(given, (str, os.PathLike)) and given != "auto":
            evaluation = json.loads(Path(given).read_text())
        elif isinstance(given, Mapping):
            evaluation = dict(given)
        else:  # "auto": train the retain model only when something needs it; else reuse it if it is there
            train = target == "retrain" or bool(options.get("forget_quality"))
            evaluation = retain_only_reference(source, data.forget_split, data=data, eval_kwargs=self._eval_kwargs(data, options),
                                          train=train)
        if evaluation is None:
            if target == "retrain":
                from ..errors import UsageError

                raise UsageError("target 'retrain' needs the retain model (retain_reference_eval='auto' or its evaluation)")
            return None
        return {**dict(evaluation.get("scores") or {}), "tofu_eval": evaluation}

    @staticmethod
    def _eval_kwargs(data: LLMRunData, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"max_length": data.max_length, **dict(options.get("eval_kwargs") or {})}

    def evaluate(self, model: Any, data: Any, *, seed: int, start: Mapping[str, Any] | None,
                 reference: Mapping[str, Any] | None, options: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(data, LLMRunData):
            return {}  # the orchestrator reads the caller's probe instead
        model.eval()
        metrics: dict[str, Any] = dict(data.scores(model))
        if any(math.isnan(v) for v in metrics.values()):
            return metrics  # the orchestrator refuses it; no TOFU evaluation of a NaN model
        if options.get("evaluate", True):
            cache = None
            if start is None and from_main():  # start evaluations are shared by every method
                cache = reference_root(data.run.path) / "eval_cache"
            evaluate_tofu = get_plugin_manager().metrics.get("evaluate_tofu")
            evaluation = evaluate_tofu(model, data.tokenizer, data.splits, forget_split=data.forget_split,
                                       retain_reference=(reference or {}).get("tofu_eval"), cache_dir=cache,
                                       **self._eval_kwargs(data, options))
            metrics.update(_summary(evaluation))
            metrics["_tofu_eval"] = evaluation
        if start is not None:
            for key in ("retain_acc", "gen_acc"):
                if key in start and key in metrics:
                    metrics[key.replace("_acc", "_drop")] = float(start[key]) - float(metrics[key])
        return metrics

    # -- running -------------------------------------------------------------------------------

    def prepare_model(self, model: Any, accelerator: Any, options: Mapping[str, Any]) -> tuple[Any, Any]:
        return model, accelerator  # the Trainer places the model itself

    def run_method(self, method: Any, model: Any, data: Any, params: Mapping[str, Any], monitor: MonitorSettings,
                   options: Mapping[str, Any]) -> RunOutcome:
        from .methods import LLMUnlearnData
        from .monitor import TrainerStepMonitor

        params = dict(params)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and "per_device_train_batch_size" not in params:  # keep the effective batch
            params["per_device_train_batch_size"] = max(1, int(params.get("per_device_train_batch_size", 8)) // world)
        if options.get("lora"):
            from .lora import wrap_lora

            model = wrap_lora(model, options["lora"])
        if isinstance(data, LLMRunData):
            seed = int(params.get("seed", 0))
            data = LLMUnlearnData(forget=data.forget_dataset(getattr(method, "forget_item", "qa"), seed),
                                  retain=data.retain, tokenizer=data.tokenizer, collator=data.collator, seed=seed)
        last: dict[str, float] = {}

        def forget_score(m: Any) -> float:  # one probe call per evaluation gives both numbers
            assert monitor.probe is not None
            last.clear()
            last.update(monitor.probe(m))
            return last["forget_acc"]

        watcher = TrainerStepMonitor(
            forget_score if monitor.probe is not None else None,
            (lambda m: last.get("retain_acc", math.nan)) if monitor.probe is not None else None,
            target=monitor.target, eval_every=monitor.eval_every, stop_at_target=monitor.stop_at_target,
            on_eval=monitor.on_eval,
        )
        if monitor.probe is not None and monitor.target is not None and monitor.stop_at_target:
            start = dict(monitor.probe(model))
            if start["forget_acc"] <= monitor.target:  # nothing to do: the start already meets the target
                if monitor.on_eval is not None:
                    monitor.on_eval(0, start)
                return RunOutcome(model=model, steps=0, steps_to_target=0, met_at_start=True,
                                  trail=[(0, start["forget_acc"], start.get("retain_acc", math.nan))])
        extra = dict(options.get("training_args") or {})
        if not torch.cuda.is_available() and "use_cpu" not in params:  # else the Trainer drops the process
            extra.setdefault("use_cpu", True)  # group it finds (CPU under `accelerate launch`): every rank is rank 0
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its log dicts: stdout stays the caller's
                returned = method.run(model, data, callbacks=[watcher, *options.get("callbacks", ())], training_args=extra,
                                      output_dir=options.get("trainer_output_dir"), **params)
        except DivergedError as exc:
            exc.updates = watcher.steps  # type: ignore[attr-defined]  # the orchestrator's message names it
            raise
        final = returned if isinstance(returned, torch.nn.Module) else model
        final.eval()
        return RunOutcome(model=final, steps=watcher.steps, steps_to_target=watcher.steps_to_target,
                          met_at_start=watcher.met_at_start, stopped_early=watcher.stopped_early, trail=list(watcher.trail))

    # -- output --------------------------------------------------------------------------------

    def save_model(self, model: Any, directory: Path, options: Mapping[str, Any]) -> None:
        if options.get("lora"):
            from .lora import save_adapter

            save_adapter(model, directory / "adapter")
        else:
            super().save_model(model, directory, options)

    def result_fields(self, result: Any) -> dict[str, Any]:
        split = result.metrics.get("split") or {}
        return {"forget_split": split.get("forget_split"), "lora": result.config.get("lora", False)}

    def extra_files(self, result: Any) -> dict[str, Any]:
        start = result.metrics.get("start_metrics") or {}
        if "_tofu_eval" not in result.metrics and "_tofu_eval" not in start:
            return {}
        return {"tofu_eval.json": {"start": start.get("_tofu_eval"), "final": result.metrics.get("_tofu_eval")}}


def from_main() -> bool:
    from .._accelerate import is_main_process

    return is_main_process()
