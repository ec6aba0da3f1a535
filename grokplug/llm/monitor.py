"""Count Trainer updates until the forget score reaches a target: the LLM analogue of vision's StepMonitor.

:class:`TrainerStepMonitor` is a ``TrainerCallback``. Every ``eval_every`` optimizer steps (and at the
start) rank 0 measures ``forget_score(model)`` and ``retain_score(model)`` (e.g. forget-set answer
probability or accuracy; **lower forget score = more forgotten**), broadcasts them, and every rank
records the trail and fires ``grokplug_on_unlearn_step``. Training stops on every rank together
(``control.should_training_stop``) once the target is reached or any plugin, on any rank, asks.

With ``lifecycle=True`` and a ``context`` it also fires ``grokplug_before_unlearn`` at
``on_train_begin`` and ``grokplug_after_unlearn`` at ``on_train_end`` with an
:class:`~grokplug.UnlearnResult` (kept as ``monitor.result``): that is what ``TrainerAdapter.unlearn``
uses. Inside :func:`grokplug.unlearn`-style sessions, which fire those hooks themselves, leave it off.

Rank 0 evaluates the *unwrapped* model alone, so sharded setups (FSDP, ZeRO-3) are not supported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .._targets import resolve_target
from .._unlearn_types import UnlearnContext, UnlearnResult
from ..errors import DivergedError, UsageError

__all__ = ["TrainerStepMonitor"]

Score = Callable[[Any], float]


def _distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def _comm_device(args: TrainingArguments) -> torch.device:
    backend = torch.distributed.get_backend()
    return args.device if backend == "nccl" else torch.device("cpu")


class TrainerStepMonitor(TrainerCallback):
    """Record ``(step, forget, retain)`` every ``eval_every`` updates; stop at ``target``.

    :param forget_score: ``model -> float``; ``None`` only counts steps (no trail, no hooks per step).
    :param retain_score: ``model -> float`` or ``None`` (then ``nan`` is recorded).
    :param target: forget-score threshold (reached when score ≤ target), ``"frac:F"`` (F × the start
        score) or ``None`` to only record the trail.
    :param metric_names: the names under which the two scores reach the hook. The hook contract asks
        for ``forget_acc``/``retain_acc``; other names are passed in addition to those.
    :param on_eval: ``(step, metrics) -> bool``, called on every rank; ``True`` asks to stop.
    """

    def __init__(
        self,
        forget_score: Score | None = None,
        retain_score: Score | None = None,
        *,
        target: float | str | None = None,
        eval_every: int = 1,
        stop_at_target: bool = True,
        context: UnlearnContext | None = None,
        lifecycle: bool = False,
        on_eval: Callable[[int, dict[str, float]], bool | None] | None = None,
        metric_names: tuple[str, str] = ("forget_acc", "retain_acc"),
    ) -> None:
        if eval_every < 1:
            raise UsageError(f"eval_every must be >= 1, got {eval_every}")
        if lifecycle and context is None:
            raise UsageError("lifecycle=True needs the UnlearnContext the hooks receive (context=)")
        if target is not None and forget_score is None:
            raise UsageError("a target needs a forget_score to measure it")
        if target is not None:
            try:  # fail now on a bad spec, not after the first evaluation
                resolve_target(target, {"forget_acc": 1.0})
            except KeyError:
                raise UsageError(
                    f"target {target!r} needs metrics the LLM monitor lacks; use a number, 'frac:F' or None"
                ) from None
        self.forget_score, self.retain_score = forget_score, retain_score
        self.target_spec, self.eval_every, self.stop_at_target = target, eval_every, stop_at_target
        self.context, self.lifecycle, self.on_eval = context, lifecycle, on_eval
        self.metric_names = metric_names
        self.target: float | None = None
        self.start_step = 0
        self.steps = 0
        self.steps_to_target: int | None = None
        self.met_at_start = False
        self.stopped_early = False
        self.trail: list[tuple[int, float, float]] = []
        self.start_metrics: dict[str, float] = {}
        self.result: UnlearnResult | None = None

    # -- measuring -----------------------------------------------------------------------------

    def _measure(self, model: Any) -> tuple[float, float]:
        assert self.forget_score is not None
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                forget = float(self.forget_score(model))
                retain = float(self.retain_score(model)) if self.retain_score is not None else math.nan
        finally:
            model.train(was_training)
        return forget, retain

    def _shared_scores(self, model: Any, args: TrainingArguments, state: TrainerState) -> tuple[float, float]:
        """Rank 0 measures, every rank gets its numbers."""
        if not _distributed():
            return self._measure(model)
        values = torch.zeros(2, dtype=torch.float64, device=_comm_device(args))
        if state.is_world_process_zero:
            values += torch.tensor(self._measure(model), dtype=torch.float64, device=values.device)
        torch.distributed.broadcast(values, src=0)
        return float(values[0]), float(values[1])

    @staticmethod
    def _any_rank(flag: bool, args: TrainingArguments) -> bool:
        if not _distributed():
            return flag
        value = torch.tensor([int(flag)], device=_comm_device(args))
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item())

    def _metrics(self, forget: float, retain: float) -> dict[str, float]:
        metrics = {"forget_acc": forget, "retain_acc": retain}
        metrics.update(dict(zip(self.metric_names, (forget, retain), strict=True)))
        return metrics

    def _evaluate(self, model: Any, args: TrainingArguments, state: TrainerState, *, may_stop: bool) -> bool:
        """Record one trail point, fire the hook; returns whether every rank should stop now."""
        forget, retain = self._shared_scores(model, args, state)
        if math.isnan(forget):
            raise DivergedError("the forget score is NaN during unlearning; lower the learning rate")
        step = self.steps
        if step == 0 and not self.trail:
            self.start_metrics = self._metrics(forget, retain)
            self.target = (
                resolve_target(self.target_spec, {"forget_acc": forget})
                if self.target_spec is not None
                else None
            )
        self.trail.append((step, forget, retain))
        metrics = self._metrics(forget, retain)
        stop = bool(self.on_eval(step, metrics)) if self.on_eval is not None else False
        if self.context is not None:
            from ..plugins import get_plugin_manager

            stop = get_plugin_manager().unlearn_step(self.context, step, metrics) or stop
        if self.target is not None and self.steps_to_target is None and forget <= self.target:
            self.steps_to_target = step
            self.met_at_start = step == 0
            stop = stop or (self.stop_at_target and step > 0)
        return self._any_rank(stop and may_stop, args)

    # -- Trainer events ------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.start_step = state.global_step
        self.steps = 0
        if self.lifecycle:
            from ..plugins import get_plugin_manager

            assert self.context is not None
            get_plugin_manager().before_unlearn(self.context)
        if self.forget_score is not None:
            self._evaluate(kwargs["model"], args, state, may_stop=False)  # where the start stands

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.steps = state.global_step - self.start_step
        if self.forget_score is None or self.steps % self.eval_every:
            return
        if self._evaluate(kwargs["model"], args, state, may_stop=True):
            control.should_training_stop = True
            self.stopped_early = state.global_step < state.max_steps

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.steps = state.global_step - self.start_step
        model = kwargs["model"]
        if self.forget_score is not None and (not self.trail or self.trail[-1][0] != self.steps):
            self._evaluate(model, args, state, may_stop=False)  # the final state, between evaluations
        if self.lifecycle:
            from ..plugins import get_plugin_manager

            assert self.context is not None
            self.result = self.make_result(model)
            get_plugin_manager().after_unlearn(self.context, self.result)

    def make_result(self, model: Any) -> UnlearnResult:
        """An :class:`UnlearnResult` from what the monitor saw (final scores, trail, steps-to-target)."""
        assert self.context is not None
        metrics: dict[str, Any] = {}
        if self.trail:
            metrics.update(self._metrics(self.trail[-1][1], self.trail[-1][2]))
            metrics.update(
                start_metrics=dict(self.start_metrics),
                target_forget_acc=self.target,
                met_at_start=self.met_at_start,
            )
        return UnlearnResult(
            model=model, method=self.context.method, start=self.context.start, metrics=metrics,
            steps_to_target=self.steps_to_target, total_steps=self.steps, stopped_early=self.stopped_early,
            trail=list(self.trail), config=dict(self.context.config),
        )  # fmt: skip
