"""Old public names kept as deprecated aliases: each call warns once per call site and forwards."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["deprecated_alias"]

F = TypeVar("F", bound=Callable[..., Any])


def deprecated_alias(new: F, old_name: str, new_name: str) -> F:
    """``new`` under its old name: calling it emits a ``DeprecationWarning`` that names the replacement."""

    @functools.wraps(new)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{old_name} is deprecated; use {new_name} (the same model: trained without the forget set)",
                      DeprecationWarning, stacklevel=2)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name.rpartition(".")[2]
    alias.__doc__ = f"Deprecated alias of :func:`{new_name}`."
    return alias  # type: ignore[return-value]
