"""Count optimizer updates until the forget accuracy reaches a target, without touching method code.

The monitor registers PyTorch's *global* optimizer post-step hook, so it sees the updates of
optimizers a method builds inside itself (OPTML, DeepUnlearn, Bad Teacher all do). Every
``eval_every`` updates it asks the domain's *probe* for ``forget_acc`` and ``retain_acc``, calls
``on_eval`` (the orchestrator fires ``grokplug_on_unlearn_step`` there) and, once the target is reached
(or a plugin asks), stops the method by raising from the hook. Without a probe it only counts updates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from .errors import DivergedError, UsageError

__all__ = ["Probe", "StepMonitor", "StopUnlearning"]

#: ``model -> {"forget_acc": ..., "retain_acc": ..., ...}``: what the monitor measures after an update.
Probe = Callable[[Any], Mapping[str, float]]


class StopUnlearning(Exception):
    """Raised inside the optimizer hook to end a method early; caught by :class:`StepMonitor`."""


class StepMonitor:
    """Use as a context manager around a method's run.

    :param probe: measures the model (``forget_acc``, ``retain_acc``); ``None`` only counts updates.
    :param target: forget-accuracy threshold, or ``None`` to only record the trail.
    :param on_eval: called with ``(step, metrics)``; returns ``True`` to stop (the plugin hook).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        probe: Probe | None,
        *,
        target: float | None,
        eval_every: int = 1,
        stop_at_target: bool = True,
        on_eval: Callable[[int, dict[str, float]], bool | None] | None = None,
    ) -> None:
        if eval_every < 1:
            raise UsageError(f"eval_every must be >= 1, got {eval_every}")
        if target is not None and probe is None:
            raise UsageError("a target needs a probe that measures the forget accuracy")
        self.model, self.probe = model, probe
        self.target, self.eval_every, self.stop_at_target = target, eval_every, stop_at_target
        self.on_eval = on_eval
        self.steps = 0
        self.steps_to_target: int | None = None
        self.met_at_start = False
        self.stopped_early = False
        self.trail: list[tuple[int, float, float]] = []
        self._handle: Any = None

    def _evaluate(self) -> bool:
        """Record a trail point; returns whether to stop."""
        if self.probe is None:
            return bool(self.on_eval(self.steps, {})) if self.on_eval else False
        metrics = {k: float(v) for k, v in self.probe(self.model).items()}
        forget_acc, retain_acc = metrics["forget_acc"], metrics.get("retain_acc", math.nan)
        if math.isnan(forget_acc):
            raise DivergedError("forget accuracy is NaN during unlearning")
        self.trail.append((self.steps, forget_acc, retain_acc))
        stop = bool(self.on_eval(self.steps, metrics)) if self.on_eval else False
        if self.target is not None and self.steps_to_target is None and forget_acc <= self.target:
            self.steps_to_target = self.steps
            self.met_at_start = self.steps == 0
            stop = stop or (self.stop_at_target and self.steps > 0)
        return stop

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.steps += 1
        if self.steps % self.eval_every == 0 and self._evaluate():
            self.stopped_early = True
            raise StopUnlearning

    def __enter__(self) -> StepMonitor:
        self._evaluate()  # step 0: where the start stands (the target may already hold)
        self._handle = register_optimizer_step_post_hook(self._after_step)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, DivergedError):
            exc.updates = self.steps  # type: ignore[attr-defined]  # the orchestrator's message names it
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if exc_type is None and self.probe is not None and (not self.trail or self.trail[-1][0] != self.steps):
            self._evaluate()  # the final state, if the last update was between evaluations
        return exc_type is StopUnlearning
