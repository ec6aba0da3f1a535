"""``@grok_aware``: make an existing unlearning function start from a grok-aware checkpoint."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ._resolve import Source, load_checkpoint
from ._unlearn_types import UnlearnContext, UnlearnResult
from .errors import UsageError
from .plugins import get_plugin_manager

F = TypeVar("F", bound=Callable[..., Any])


def grok_aware(
    source: Source,
    phase: str = "grok",
    *,
    model_arg: str = "model",
    fallback: str | None = None,
    method_name: str | None = None,
) -> Callable[[F], F]:
    """Decorate an unlearning function so that it starts from ``phase`` of ``source``.

    Before each call the model passed as ``model_arg`` (by position or keyword) is filled, in place,
    with the requested checkpoint; ``grokplug_before_unlearn`` fires, the function runs unchanged,
    then ``grokplug_after_unlearn`` fires. The function's return value is passed through. Works on
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
            bound = signature.bind(*args, **kwargs)
            model = bound.arguments.get(model_arg)
            if not isinstance(model, torch.nn.Module):
                raise UsageError(f"{name}(): argument {model_arg!r} must be a torch.nn.Module, got {type(model).__name__}")
            ref = load_checkpoint(model, source, phase, fallback=fallback)
            pm = get_plugin_manager()
            context = UnlearnContext(method=name, model=model, start=ref, config={"phase": phase, "source": str(source)})
            pm.before_unlearn(context)
            returned = fn(*bound.args, **bound.kwargs)
            final_model = returned if isinstance(returned, torch.nn.Module) else model
            pm.after_unlearn(context, UnlearnResult(model=final_model, method=name, start=ref))
            return returned

        wrapper.grokplug_start = (source, phase)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
