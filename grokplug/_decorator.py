"""``@grok_aware``: make an existing unlearning function start from a grok-aware checkpoint.

The decorated call goes through the one orchestrator (:func:`grokplug.unlearn`) as a method of the
built-in ``function`` domain: the model is filled in place, the lifecycle hooks fire as for any method
(``on_unlearn_step`` after every optimizer update, counted through PyTorch's global optimizer hook),
and the function's own return value is passed through.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch

from ._domain import MonitorSettings, RunOutcome, UnlearningDomain
from ._monitor import Probe, StepMonitor
from ._resolve import Source
from ._unlearning_method import UnlearningMethod
from .errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["FunctionDomain", "grok_aware"]


class FunctionDomain(UnlearningDomain):
    """Plain functions that change a model they are given (the decorator's domain): no data of their own.

    Without a probe the monitor only counts optimizer updates and ``on_unlearn_step`` receives empty
    metrics; with ``probe=`` it gets ``forget_acc``/``retain_acc`` like any domain.
    """

    name: ClassVar[str] = "function"
    description: ClassVar[str] = "a decorated function that changes the model it is given (@grok_aware)"
    default_target: ClassVar[str | None] = None

    def run_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> Any:
        return None

    def run_method(self, method: Any, model: Any, data: Any, params: Mapping[str, Any], monitor: MonitorSettings,
                   options: Mapping[str, Any]) -> RunOutcome:
        watcher = StepMonitor(model, monitor.probe, target=monitor.target, eval_every=monitor.eval_every,
                              stop_at_target=monitor.stop_at_target, on_eval=monitor.on_eval)
        with watcher:
            returned = method.run(model, data, **params)
        final = returned if isinstance(returned, torch.nn.Module) else model
        return RunOutcome(model=final, steps=watcher.steps, steps_to_target=watcher.steps_to_target,
                          met_at_start=watcher.met_at_start, stopped_early=watcher.stopped_early, trail=watcher.trail)


class _Call(UnlearningMethod):
    """One call of a decorated function, as a method object (keeps the function's return value)."""

    domain: ClassVar[str] = "function"

    def __init__(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name  # type: ignore[misc]
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.returned: Any = None

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        self.returned = self.fn(*self.args, **self.kwargs)
        return self.returned


def grok_aware(
    source: Source,
    phase: str = "grok",
    *,
    model_arg: str = "model",
    fallback: str | None = None,
    method_name: str | None = None,
    probe: Probe | None = None,
) -> Callable[[F], F]:
    """Decorate an unlearning function so that it starts from ``phase`` of ``source``.

    Before each call the model passed as ``model_arg`` (by position or keyword) is filled, in place,
    with the requested checkpoint; ``grokplug_before_unlearn`` fires, the function runs unchanged
    (``grokplug_on_unlearn_step`` after its optimizer updates; with ``probe`` —
    ``model -> {"forget_acc", "retain_acc"}`` — the hook gets those metrics), then
    ``grokplug_after_unlearn`` fires. The function's return value is passed through. Works on
    ``nn.Module``, HF ``PreTrainedModel`` and peft models::

        @grokplug.grok_aware("runs/modular", phase="grok")
        def gradient_ascent(model, forget_loader, steps=20): ...
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        if model_arg not in signature.parameters:
            raise UsageError(f"{fn.__qualname__}() has no parameter {model_arg!r}; pass model_arg= to name the model")
        name = method_name or fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from ._unlearn import unlearn

            bound = signature.bind(*args, **kwargs)
            model = bound.arguments.get(model_arg)
            if not isinstance(model, torch.nn.Module):
                raise UsageError(f"{name}(): argument {model_arg!r} must be a torch.nn.Module, got {type(model).__name__}")
            call = _Call(name, fn, bound.args, bound.kwargs)
            unlearn(call, model, source=source, start=phase, fallback=fallback, target=None, probe=probe)
            return call.returned

        wrapper.grokplug_start = (source, phase)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
