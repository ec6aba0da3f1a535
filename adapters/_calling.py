"""How adapters call a foreign method: a CUDA shim for CPU-only machines, the model's device, and what a
function's signature accepts.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["cuda_shim", "describe", "device_of", "positional_names", "rejected_keywords", "signature_of"]


@contextmanager
def cuda_shim(device: torch.device | str | None = None) -> Iterator[None]:
    """While inside, ``Tensor.cuda()`` / ``Module.cuda()`` move to ``device`` when CUDA is unavailable.

    Lets CUDA-only code (OPTML's hard-coded ``image.cuda()``) run unchanged on CPU. Trade-offs: the
    patch is process-wide while active (other threads see it), ``.cuda()`` arguments are ignored, and
    ``.to("cuda")``, ``torch.device("cuda")`` or ``torch.cuda.*`` calls are *not* redirected. With
    CUDA available it does nothing.
    """
    if torch.cuda.is_available():
        yield
        return
    target = torch.device(device or "cpu")
    tensor_cuda, module_cuda = torch.Tensor.cuda, nn.Module.cuda

    def _tensor(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.to(target)

    def _module(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        return self.to(target)

    torch.Tensor.cuda, nn.Module.cuda = _tensor, _module  # type: ignore[method-assign,assignment]  # the CPU shim
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda = tensor_cuda, module_cuda  # type: ignore[method-assign]


def device_of(model: Any) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for parameter-less models)."""
    if isinstance(model, nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def signature_of(fn: Any) -> inspect.Signature | None:
    """``inspect.signature`` or ``None`` where Python cannot tell (builtins, some C callables)."""
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def positional_names(fn: Any) -> list[str] | None:
    """Names of the parameters ``fn`` takes positionally; ``None`` if unknown or it takes ``*args``."""
    sig = signature_of(fn)
    if sig is None or any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds]


def rejected_keywords(fn: Any, names: Any) -> list[str]:
    """Which of ``names`` ``fn`` cannot take as keyword arguments (empty if it has ``**kwargs``)."""
    sig = signature_of(fn)
    if sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return []
    ok = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return sorted(set(names) - ok)


def describe(target: Any, shape: str) -> str:
    """A one-line description: the target's docstring first line, else what it is."""
    doc = inspect.getdoc(target)
    if doc:
        return doc.strip().split("\n", 1)[0]
    return f"{shape} adapter for {getattr(target, '__qualname__', type(target).__name__)}"
