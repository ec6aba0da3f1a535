"""Running foreign code unchanged: toolkit import isolation, a CUDA shim, and the adapter base class.

Flat-script toolkits (OPTML, SSD, Bad Teacher) import each other's files by generic top-level names
(``utils``, ``models``, ``unlearn``, ``datasets`` ...). :func:`load_toolkit` imports one such
checkout with its root first on ``sys.path`` and then moves every module that came from that root out
of ``sys.modules`` into a private namespace, so two toolkits with a ``utils.py`` coexist and HF
``datasets`` stays the real one. Code that runs ``import utils`` *at call time* gets its own
toolkit's module through :meth:`Toolkit.active`, which the adapters enter automatically.

Not thread-safe: ``active()`` swaps process-wide ``sys.modules`` entries for the duration of a call.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import inspect
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from torch import nn

from grokplug._unlearning_method import UnlearningMethod
from grokplug.errors import UsageError

from ._calling import cuda_shim, describe, device_of

__all__ = ["ForeignMethod", "Toolkit", "load_toolkit", "toolkit_of"]

_LOADED: weakref.WeakSet[Toolkit] = weakref.WeakSet()
_MISSING = object()


def _top_level_names(root: Path) -> set[str]:
    """Module names a directory provides when it is first on ``sys.path`` (namespace dirs excluded:
    they never shadow a real module)."""
    suffixes = (".py", *importlib.machinery.EXTENSION_SUFFIXES)
    names: set[str] = set()
    for entry in root.iterdir():
        if entry.is_dir() and (entry / "__init__.py").is_file() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.is_file():
            for suffix in suffixes:
                stem = entry.name[: -len(suffix)]
                if entry.name.endswith(suffix) and stem.isidentifier():
                    names.add(stem)
    # An already-imported stdlib module wins over a same-named toolkit file when the toolkit's own
    # scripts run too (sys.modules is consulted before sys.path), so never hide those.
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    return {n for n in names if not (n in stdlib and n in sys.modules) and n not in sys.builtin_module_names}


def _is_under(module: Any, root: str) -> bool:
    """Whether a module object was loaded from files below ``root``."""
    locations: list[Any] = [getattr(module, "__file__", None)]
    try:  # __path__ may be an exotic object (torch._classes); only real path lists count
        locations.extend(list(module.__path__))
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        pass
    for loc in locations:
        if isinstance(loc, str) and os.path.realpath(loc).startswith(root + os.sep):
            return True
    return False


def _family(name: str, names: set[str]) -> bool:
    return name.split(".", 1)[0] in names


class Toolkit:
    """One imported toolkit checkout, its modules kept out of ``sys.modules`` between calls.

    ``toolkit["unlearn"]`` gives a module; :meth:`active` re-installs the toolkit's modules (and its
    root on ``sys.path``) for the duration of a call; :meth:`wrap` returns a callable that does so.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._names = _top_level_names(root)
        self._modules: dict[str, ModuleType] = {}

    @property
    def modules(self) -> Mapping[str, ModuleType]:
        """Read-only view of the private namespace: dotted name -> module."""
        return MappingProxyType(self._modules)

    def __getitem__(self, name: str) -> ModuleType:
        if name not in self._modules:
            with self.active():
                importlib.import_module(name)  # imported lazily, captured on leaving active()
        return self._modules[name]

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __repr__(self) -> str:
        return f"<Toolkit {str(self.root)!r}: {', '.join(sorted(self._modules)) or 'nothing imported'}>"

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` (function, class, instance, bound method, partial) was defined by this toolkit."""
        dicts = {id(m.__dict__) for m in self._modules.values()}
        return any(id(g) in dicts for g in _globals_of(obj))

    @contextmanager
    def active(self) -> Iterator[Toolkit]:
        """Make ``import utils`` (and friends) resolve to this toolkit's modules while inside.

        Nests (also with other toolkits, and with itself): each entry hides what is installed under
        the toolkit's names and puts it back on exit.
        """
        saved_path = list(sys.path)
        # Hide whatever is installed under the toolkit's names (another toolkit, HF datasets, ...).
        hidden = {k: sys.modules.pop(k) for k in list(sys.modules) if _family(k, self._names)}
        sys.modules.update(self._modules)
        sys.path.insert(0, str(self.root))
        try:
            yield self
        finally:
            self._capture()
            sys.path[:] = saved_path
            for key in [k for k in sys.modules if _family(k, self._names) or k in self._modules]:
                del sys.modules[key]
            sys.modules.update(hidden)

    def _capture(self) -> None:
        """Move modules loaded from this root into the private namespace (and out of sys.modules later)."""
        for key, mod in list(sys.modules.items()):
            if key not in self._modules and (_family(key, self._names) or _is_under(mod, self._real_root)):
                self._modules[key] = mod

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped so every call runs inside :meth:`active`."""

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.active():
                return fn(*args, **kwargs)

        call.__wrapped__ = fn  # type: ignore[attr-defined]
        call.__name__ = getattr(fn, "__name__", "call")
        call.__doc__ = fn.__doc__
        return call


def _globals_of(obj: Any) -> list[dict[str, Any]]:
    """The module globals a callable (or class, or instance) runs against."""
    seen: list[dict[str, Any]] = []
    for _ in range(8):  # unwrap partials / bound methods / __wrapped__ chains, bounded
        if hasattr(obj, "__globals__"):
            seen.append(obj.__globals__)
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, "__func__"):  # bound method
            obj = obj.__func__
        elif hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        else:
            break
    cls = obj if inspect.isclass(obj) else (None if inspect.isroutine(obj) else type(obj))
    if cls is not None:
        for klass in cls.__mro__:
            for attr in vars(klass).values():
                func = getattr(attr, "__func__", attr)
                if inspect.isfunction(func):
                    seen.append(func.__globals__)
    return seen


def toolkit_of(obj: Any) -> Toolkit | None:
    """The :func:`load_toolkit` result that defined ``obj``, if any."""
    return next((tk for tk in list(_LOADED) if tk.owns(obj)), None)


def load_toolkit(
    root: str | os.PathLike[str], *modules: str, prepare: Callable[[Toolkit], Any] | None = None
) -> Toolkit:
    """Import ``modules`` from a flat-script checkout at ``root`` without leaking generic names.

    During the import ``root`` is first on ``sys.path`` and same-named modules already imported are
    hidden; afterwards ``sys.path`` and those modules are restored, and every module loaded from
    ``root`` lives only in the returned :class:`Toolkit`. A failing import leaves no trace either,
    and is reported on one line naming the missing name and the toolkit file that asked for it
    (:class:`~grokplug.adapters.toolkit_fixes.ToolkitImportError`).

    ``prepare(toolkit)`` runs inside the isolation before the imports: the place to patch a broken
    checkout in memory (:func:`~grokplug.adapters.patch_module`, :func:`~grokplug.adapters.stub_module`).
    """
    from .toolkit_fixes import describe_import_error

    path = Path(root).resolve()
    if not path.is_dir():
        raise UsageError(f"toolkit root {str(root)!r} is not a directory")
    importlib.invalidate_caches()  # files may have been written just now (finder caches are stale)
    toolkit = Toolkit(path)
    try:
        with toolkit.active():
            if prepare is not None:
                prepare(toolkit)
            for name in modules:
                importlib.import_module(name)
    except ImportError as exc:
        raise describe_import_error(exc, path) from exc
    _LOADED.add(toolkit)
    return toolkit


class ForeignMethod(UnlearningMethod):
    """Base of every adapter: an :class:`UnlearningMethod` that calls third-party code unchanged.

    Configured per instance (the base class's attributes are class-level defaults). Calls run inside
    :meth:`foreign`, which enters the callable's toolkit (:meth:`Toolkit.active`) and the optional
    :func:`cuda_shim`; :meth:`_as_module` turns an in-place ``None`` (or a metric) into the model.
    """

    shape = "foreign"

    def __init__(
        self,
        target: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        cifar_defaults: Mapping[str, Any] | None = None,
        iterative: bool = True,
        strength_param: str | None = None,
        domain: str = "vision",
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
    ) -> None:
        label = name or getattr(target, "__name__", None) or type(target).__name__
        defaults = dict(defaults or {})
        if strength_param is not None and strength_param not in defaults:
            raise UsageError(
                f"strength_param {strength_param!r} must be one of the defaults: {sorted(defaults)}"
            )
        # ClassVars on UnlearningMethod; adapters are configured per instance, so write instance attrs.
        vars(self).update(
            name=label,
            description=description or describe(target, self.shape),
            defaults=defaults,
            cifar_defaults=dict(cifar_defaults or {}),
            iterative=iterative,
            strength_param=strength_param,
            domain=domain,
        )
        self.target = target
        self.toolkit = toolkit if toolkit is not None else toolkit_of(target)
        self.cuda_shim = cuda_shim

    @contextmanager
    def foreign(self, model: Any) -> Iterator[None]:
        """Inside: the target's toolkit is active and, if asked, the CUDA shim; undone on any exit."""
        with ExitStack() as stack:
            if self.toolkit is not None:
                stack.enter_context(self.toolkit.active())
            if self.cuda_shim:
                stack.enter_context(cuda_shim(device_of(model)))
            yield

    @staticmethod
    def _as_module(returned: Any, model: Any) -> Any:
        """The returned module, else the model changed in place (``None``, metrics, tuples)."""
        return returned if isinstance(returned, nn.Module) else model
