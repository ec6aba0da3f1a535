"""Path arithmetic with no knowledge of runs: resolving, containment, staying inside a root.

Kept apart from :mod:`grokplug._paths` (the run-aware checks) so that :mod:`grokplug._rundir` can use
it without an import cycle.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UnsafePathError

__all__ = ["PathLike", "is_within", "resolve_inside", "resolved"]

PathLike = str | os.PathLike[str]


def resolved(path: PathLike) -> Path:
    """The absolute path with every symlink of its existing part followed."""
    return Path(path).expanduser().resolve()


def is_within(path: PathLike, root: PathLike) -> bool:
    """Whether ``path`` is ``root`` or lies under it, after resolving both (symlinks included)."""
    p, r = resolved(path), resolved(root)
    return p == r or r in p.parents


def resolve_inside(root: PathLike, relative: str, *, what: str) -> Path:
    """``root / relative`` resolved, refused unless it stays inside ``root`` (``what`` names who asked)."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative) or "\x00" in relative:
        raise UnsafePathError(f"{what} names an absolute or invalid path {relative!r}; refused")
    base = resolved(root)
    candidate = (base / relative).resolve()
    if candidate != base and base not in candidate.parents:
        raise UnsafePathError(f"{what} names {relative!r}, which is outside the run directory; refused")
    return candidate
