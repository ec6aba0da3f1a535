"""Broken checkouts: say which of the toolkit's own imports failed, and patch it in memory.

A toolkit checkout can fail to import for reasons of its own (Unlearn-Saliency's current main:
``trainer/__init__.py`` imports ``train_with_rewind``, which ``trainer/train.py`` no longer defines;
selective-synaptic-dampening's ``ssd.py`` imports ``wandb`` without using it). :func:`describe_import_error`
turns such a failure into one line naming the missing name and the toolkit file and line that asked
for it. The fixes below run inside the toolkit's isolation through ``prepare=`` (of
:func:`~grokplug.adapters.load_toolkit` / :func:`~grokplug.adapters.from_toolkit`) and never touch a file:

* :func:`patch_module`: import one module of the toolkit *before* its package ``__init__`` runs and
  give it the attributes that ``__init__`` expects;
* :func:`stub_module`: an empty stand-in for an optional dependency the toolkit imports but does not use.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from grokplug.errors import GrokplugError

__all__ = ["ToolkitImportError", "describe_import_error", "patch_module", "stub_module"]


class ToolkitImportError(GrokplugError, ImportError):
    """A toolkit checkout's own import failed (a bug or a missing dependency of the toolkit, not grokplug's)."""

    exit_code = 2


def _where(exc: BaseException, root: Path) -> str | None:
    """``file:line`` (relative to ``root``) of the deepest traceback frame inside the toolkit."""
    real = os.path.realpath(root)
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.realpath(frame.filename)
        if path.startswith(real + os.sep):
            found = f"{os.path.relpath(path, real)}:{frame.lineno}"
    return found


def describe_import_error(exc: ImportError, root: Path) -> ToolkitImportError:
    """One line: what is missing, where the toolkit asked for it, and how to get past it."""
    where = _where(exc, root)
    at = f" at {where}" if where else ""
    if isinstance(exc, ModuleNotFoundError) and exc.name and not (root / exc.name.split(".")[0]).exists():
        fix = (
            f"install {exc.name.split('.')[0]!r}, or if the toolkit never uses it pass "
            f"prepare=lambda toolkit: stub_module(toolkit, {exc.name.split('.')[0]!r})"
        )
    else:
        fix = "patch it in memory with prepare= (docs/adapters.md, 'Broken checkouts'), or hand from_toolkit a Toolkit you loaded and patched"
    return ToolkitImportError(f"toolkit {str(root)!r}: its own import failed{at}: {exc}; {fix}")


def stub_module(toolkit: Any, name: str) -> ModuleType:
    """An empty module ``name`` that exists only while ``toolkit`` is active (for an import it never uses)."""
    module = ModuleType(name)
    module.__doc__ = "stand-in installed by grokplug.adapters.stub_module"
    # a spec, so availability probes (importlib.util.find_spec, as transformers does) do not raise on it
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    toolkit._names.add(name.split(".", 1)[0])  # so active() installs and hides it with the toolkit's own modules
    sys.modules[name] = module
    return module


def patch_module(toolkit: Any, name: str, **attributes: Any) -> ModuleType:
    """Import the toolkit's module ``name`` (``"trainer.train"``) without running its package's
    ``__init__`` first, set ``attributes`` on it, then run the package ``__init__`` (which now finds them).

    Call it from a ``prepare=`` callback: the toolkit is active there, so the result stays in the
    toolkit's private namespace. Only attributes the module lacks are set.
    """
    parts = name.split(".")
    for depth in range(1, len(parts)):  # create the parent packages without executing them
        package = ".".join(parts[:depth])
        if package in sys.modules:
            continue
        init = Path(toolkit.root, *parts[:depth], "__init__.py")
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(init.parent)])
        if spec is None or spec.loader is None:
            raise ToolkitImportError(f"toolkit {str(toolkit.root)!r} has no package {package!r} to patch")
        sys.modules[package] = importlib.util.module_from_spec(spec)
    module = importlib.import_module(name)
    for key, value in attributes.items():
        if not hasattr(module, key):
            setattr(module, key, value)
    for depth in range(len(parts) - 1, 0, -1):  # now run the parents' __init__, innermost first
        parent = sys.modules[".".join(parts[:depth])]
        spec = parent.__spec__
        if not getattr(parent, "__grokplug_initialised__", False) and spec is not None and spec.loader is not None:
            spec.loader.exec_module(parent)
            parent.__grokplug_initialised__ = True  # type: ignore[attr-defined]
    return module
