"""The plugin manager: built-ins as ordinary plugins, entry points, env controls, and a typed façade.

Callers use the façade methods (``pm.resolve_checkpoint(request)``, ``pm.methods`` ...) and never
``pm.hook`` directly, so every call site is typed and every plugin failure becomes one
:class:`~grokplug.errors.PluginError` line that names the plugin, its distribution and the hook.

Environment:

* ``GROKPLUG_DISABLE_PLUGIN_AUTOLOAD=1``: do not load entry points (built-ins still load);
* ``GROKPLUG_DISABLED_PLUGINS=a,b``: block these plugin names (as ``grokplug plugins`` shows them);
* ``GROKPLUG_TRACE_PLUGINS=1``: print every hook call and its result to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from grokplug.hooks import PROJECT_NAME
from grokplug.hooks import specs as _specs

from ._registry import Registry
from ._signals import Terminated
from .errors import CheckpointError, GrokplugError, GrokplugWarning, PluginError

if TYPE_CHECKING:
    import torch

    from ._detect import GrokReport, PhaseChange
    from ._types import CheckpointRef, CheckpointRequest
    from ._unlearn_types import UnlearnContext, UnlearnResult

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "GRADIENT_PLUGINS",
    "GrokplugPluginManager",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = PROJECT_NAME

#: Built-in plugins, registered under these module names exactly like external ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "grokplug.hooks.local_rundir",
    "grokplug.hooks.hf_trainer_run",
    "grokplug.hooks.default_detector",
    "grokplug.hooks.builtin_presets",
    "grokplug.hooks.builtin_domains",
    "grokplug.hooks.vision",
    "grokplug.hooks.llm",
)

#: Built-in gradient transforms: registered only when enabled (their environment flag, ``--grokfast`` /
#: ``--orthograd``, or their ``enable()``), so a run without them never calls ``grokplug_transform_gradients``.
GRADIENT_PLUGINS: dict[str, str] = {
    "grokplug.hooks.grokfast": "GROKPLUG_GROKFAST",
    "grokplug.hooks.orthograd": "GROKPLUG_ORTHOGRAD",
}

_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _grokplug_version() -> str:
    try:
        return md.version("grokplug")
    except md.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class GrokplugPluginManager(pluggy.PluginManager):
    """pluggy's manager plus lazy loading, registries and typed hook calls."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(_specs)
        self._loaded = False
        self._ready = False  # set once load() has finished: lets hot hook calls skip the lock
        self._lock = threading.RLock()
        self._tracing = False
        self._dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._registries: dict[str, Registry] = {}
        #: entry points that could not be loaded: {"name", "distribution", "error"}
        self.failed: list[dict[str, str]] = []

    # -- loading -------------------------------------------------------------------------------

    def load(
        self,
        *,
        builtins: Sequence[str] = DEFAULT_PLUGINS,
        entrypoints: bool | None = None,
    ) -> GrokplugPluginManager:
        """Load built-ins and (unless disabled) entry points, once. Returns ``self``."""
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
            for name in filter(None, os.environ.get("GROKPLUG_DISABLED_PLUGINS", "").split(",")):
                self.set_blocked(name.strip())
            version = _grokplug_version()
            enabled = [m for m, flag in GRADIENT_PLUGINS.items() if _env_flag(flag)]
            for modname in (*builtins, *enabled):
                if self.is_blocked(modname):
                    continue
                self.register(importlib.import_module(modname), name=modname)
                self._dists[modname] = ("grokplug", version)
            if entrypoints is None:
                entrypoints = not _env_flag("GROKPLUG_DISABLE_PLUGIN_AUTOLOAD")
            if entrypoints:
                self._load_entrypoints()
            self._check_pending()
            if _env_flag("GROKPLUG_TRACE_PLUGINS"):
                self._enable_trace()
            self._ready = True
            return self

    def _load_entrypoints(self) -> None:
        seen: set[str] = set()
        for dist in md.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                seen.add(ep.name)
                dist_name = dist.metadata["name"] or "?"
                if self.is_blocked(ep.name) or self.get_plugin(ep.name) is not None:
                    continue
                try:
                    plugin = ep.load()
                    self.register(plugin, name=ep.name)
                    self._check_plugin_hooks(plugin, ep.name)
                except Exception as exc:  # a broken plugin must not take the others down
                    if self.get_plugin(ep.name) is not None:
                        self.unregister(name=ep.name)
                    self.failed.append({"name": ep.name, "distribution": dist_name, "error": _one_line(exc)})
                    warnings.warn(
                        f"plugin {ep.name!r} (distribution {dist_name} {dist.version}) failed to load and was "
                        f"skipped: {_one_line(exc)}",
                        GrokplugWarning,
                        stacklevel=3,
                    )
                    continue
                self._dists[ep.name] = (dist_name, dist.version)

    def _check_plugin_hooks(self, plugin: object, name: str) -> None:
        """Refuse a plugin implementing a hook grokplug does not have (usually a typo)."""
        for caller in self.get_hookcallers(plugin) or []:
            if caller.spec is None:
                impls = [i for i in caller.get_hookimpls() if i.plugin is plugin and not i.optionalhook]
                if impls:
                    raise PluginError(f"it implements unknown hook {caller.name!r} (typo?)", plugin=name, hook=caller.name)

    def _check_pending(self) -> None:
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.get_name(exc.plugin) or repr(exc.plugin)
            raise PluginError(f"plugin {self._who(name)} is invalid: {exc}", plugin=name) from exc

    def _enable_trace(self) -> None:
        def before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            names = ", ".join(i.plugin_name for i in impls)
            print(f"[grokplug trace] {hook_name}({', '.join(kwargs)}) -> [{names}]", file=sys.stderr)

        def after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            exc = outcome.exception
            shown = f"raised {type(exc).__name__}" if exc else f"= {outcome.get_result()!r:.200}"
            print(f"[grokplug trace] {hook_name} {shown}", file=sys.stderr)

        self.add_hookcall_monitoring(before, after)
        self._tracing = True

    def set_builtin_enabled(self, modname: str, enabled: bool) -> None:
        """Register (or unregister) a built-in gradient transform of :data:`GRADIENT_PLUGINS` in this manager."""
        if modname not in GRADIENT_PLUGINS:
            raise GrokplugError(f"{modname!r} is not a built-in gradient transform ({', '.join(GRADIENT_PLUGINS)})")
        self.load()
        with self._lock:
            registered = self.get_plugin(modname) is not None
            if enabled and not registered and not self.is_blocked(modname):
                self.register(importlib.import_module(modname), name=modname)
                self._dists[modname] = ("grokplug", _grokplug_version())
            elif not enabled and registered:
                self.unregister(name=modname)

    # -- introspection -------------------------------------------------------------------------

    def distribution_of(self, plugin_name: str) -> tuple[str, str]:
        """``(distribution, version)`` of a registered plugin; ``("?", "?")`` if registered by hand."""
        return self._dists.get(plugin_name, ("?", "?"))

    def _who(self, plugin_name: str) -> str:
        dist, version = self.distribution_of(plugin_name)
        return f"{plugin_name!r} (distribution {dist} {version})"

    def describe(self) -> dict[str, Any]:
        """Everything ``grokplug plugins --json`` prints."""
        self.load()
        plugins = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda item: item[0]):
            if plugin is None:
                continue
            dist, version = self.distribution_of(name)
            hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
            plugins.append(
                {"name": name, "distribution": dist, "version": version,
                 "builtin": name in DEFAULT_PLUGINS or name in GRADIENT_PLUGINS, "hooks": hooks}
            )
        return {
            "plugins": plugins,
            "methods": self.methods.describe(),
            "metrics": self.metrics.describe(),
            "presets": self.presets.describe(),
            "domains": self.domains.describe(),
            "failed": list(self.failed),
        }

    # -- error attribution ---------------------------------------------------------------------

    def _culprit(self, hook_name: str, exc: BaseException) -> str | None:
        codes = set()
        tb = exc.__traceback__
        while tb is not None:
            codes.add(tb.tb_frame.f_code)
            tb = tb.tb_next
        for impl in getattr(self.hook, hook_name).get_hookimpls():
            if getattr(impl.function, "__code__", None) in codes:
                return impl.plugin_name
        return None

    def _failure(self, name: str | None, hook_name: str, exc: BaseException) -> PluginError:
        who = self._who(name) if name else "(unknown plugin)"
        stopped = "" if isinstance(exc, Exception) else " (it ended the run)"  # SystemExit, KeyboardInterrupt
        return PluginError(f"plugin {who} failed in {hook_name}: {_one_line(exc)}{stopped}", plugin=name, hook=hook_name)

    def _call(self, hook_name: str, **kwargs: Any) -> Any:
        if not self._ready:  # the lock costs ~0.5 µs per call; hooks fire every training step
            self.load()
        return self._call_hook(getattr(self.hook, hook_name), hook_name, **kwargs)

    def _call_hook(self, caller: Any, hook_name: str, **kwargs: Any) -> Any:
        try:
            return caller(**kwargs)
        except (GrokplugError, Terminated):
            raise  # deliberate and user-readable, or a SIGTERM that merely arrived inside a hook
        except BaseException as exc:
            name = self._culprit(hook_name, exc)
            if name is None and not isinstance(exc, Exception):
                raise  # a Ctrl-C or exit that did not come from plugin code
            raise self._failure(name, hook_name, exc) from exc

    def _answers(self, hook_name: str, *, first: bool = False, **kwargs: Any) -> list[tuple[str | None, Any]]:
        """Each non-``None`` result with the plugin that returned it, in pluggy's call order.

        Results are checked where they enter, so a wrong type names its plugin. Wrappers and tracing
        need pluggy's own call; the results then carry no plugin name.
        """
        if not self._ready:
            self.load()
        impls = getattr(self.hook, hook_name).get_hookimpls()
        if self._tracing or any(i.hookwrapper or getattr(i, "wrapper", False) for i in impls):
            answer = self._call(hook_name, **kwargs)
            return [(None, r) for r in ([answer] if first else answer) if r is not None]
        out: list[tuple[str | None, Any]] = []
        for impl in reversed(impls):  # pluggy calls the last registered first (tryfirst/trylast sorted)
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except (GrokplugError, Terminated):
                raise
            except BaseException as exc:
                raise self._failure(impl.plugin_name, hook_name, exc) from exc
            if result is not None:
                out.append((impl.plugin_name, result))
                if first:
                    break
        return out

    def _wrong_type(self, name: str | None, hook_name: str, result: Any, expected: str) -> PluginError:
        who = self._who(name) if name else "(a plugin)"
        return PluginError(
            f"plugin {who} returned {type(result).__name__} {_short(result)} from {hook_name}; it must return {expected}",
            plugin=name, hook=hook_name,
        )

    # -- registries ----------------------------------------------------------------------------

    def _registry(self, kind: str) -> Registry:
        self.load()
        with self._lock:
            if kind not in self._registries:
                hook_name = f"grokplug_register_{kind}"
                registry = Registry(kind, who=self._who)
                plugins = [impl.plugin for impl in getattr(self.hook, hook_name).get_hookimpls()]
                for impl in getattr(self.hook, hook_name).get_hookimpls():  # registration order
                    # one plugin at a time through pm.hook (tracing and wrappers apply), so each entry knows its plugin
                    others = [p for p in plugins if p is not impl.plugin]
                    caller = self.subset_hook_caller(hook_name, remove_plugins=others)
                    self._call_hook(caller, hook_name, register=registry.bound_to(impl.plugin_name))
                self._registries[kind] = registry
            return self._registries[kind]

    @property
    def methods(self) -> Registry:
        """Unlearning methods registered through ``grokplug_register_methods``."""
        return self._registry("methods")

    @property
    def metrics(self) -> Registry:
        """Metrics registered through ``grokplug_register_metrics``."""
        return self._registry("metrics")

    @property
    def domains(self) -> Registry:
        """Unlearning domains registered through ``grokplug_register_domains``."""
        return self._registry("domains")

    @property
    def presets(self) -> Registry:
        """Training presets registered through ``grokplug_register_presets``."""
        return self._registry("presets")

    # -- typed façade over pm.hook -------------------------------------------------------------

    def resolve_checkpoint(self, request: CheckpointRequest) -> CheckpointRef:
        from ._types import CheckpointRef

        answers = self._answers("grokplug_resolve_checkpoint", first=True, request=request)
        ref = answers[0][1] if answers else None
        if ref is not None and not isinstance(ref, CheckpointRef):
            raise self._wrong_type(answers[0][0], "grokplug_resolve_checkpoint", ref, "a CheckpointRef or None")
        if ref is None:
            raise CheckpointError(
                f"no plugin can resolve {request.source!r}: it is not a local run directory and no "
                "installed provider claims it (see `grokplug plugins`)"
            )
        return ref

    def read_history(self, request: CheckpointRequest) -> Any:
        """The first provider's :class:`grokplug.external.RunHistory` of ``request.source``, or ``None``."""
        from ._types import RunHistory

        answers = self._answers("grokplug_read_history", first=True, request=request)
        found = answers[0][1] if answers else None
        if found is not None and not isinstance(found, RunHistory):
            raise self._wrong_type(answers[0][0], "grokplug_read_history", found, "a RunHistory or None")
        return found

    def checkpoint_saved(self, ref: CheckpointRef) -> None:
        self._call("grokplug_on_checkpoint_saved", ref=ref)

    def detect_phases(
        self,
        history: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        checkpoint_steps: Sequence[int] | None = None,
    ) -> GrokReport:
        from ._detect import GrokReport

        answers = self._answers(
            "grokplug_detect_phases", first=True, history=history, params=params, checkpoint_steps=checkpoint_steps
        )
        report = answers[0][1] if answers else None
        if report is not None and not isinstance(report, GrokReport):
            raise self._wrong_type(answers[0][0], "grokplug_detect_phases", report, "a GrokReport or None")
        if report is None:
            raise PluginError("no detector answered grokplug_detect_phases (is the default detector disabled?)")
        return report

    def phase_changed(self, change: PhaseChange) -> None:
        self._call("grokplug_on_phase_change", change=change)

    def transform_gradients(self, model: torch.nn.Module, step: int) -> None:
        self._call("grokplug_transform_gradients", model=model, step=step)

    def has_gradient_transforms(self) -> bool:
        """Whether any plugin implements ``grokplug_transform_gradients`` (lets the tracker skip the call)."""
        self.load()
        return bool(self.hook.grokplug_transform_gradients.get_hookimpls())

    def before_unlearn(self, context: UnlearnContext) -> None:
        self._call("grokplug_before_unlearn", context=context)

    def unlearn_step(self, context: UnlearnContext, step: int, metrics: Mapping[str, float]) -> bool:
        """Returns ``True`` if any plugin asked to stop (``True``); ``False``/``None`` continue, anything else is an error."""
        answers = self._answers("grokplug_on_unlearn_step", context=context, step=step, metrics=metrics)
        for name, answer in answers:
            if not isinstance(answer, bool):
                raise self._wrong_type(name, "grokplug_on_unlearn_step", answer, "True (stop), False or None (continue)")
        return any(answer for _, answer in answers)

    def after_unlearn(self, context: UnlearnContext, result: UnlearnResult) -> None:
        self._call("grokplug_after_unlearn", context=context, result=result)


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_manager: GrokplugPluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> GrokplugPluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = GrokplugPluginManager()
    return _manager.load()


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests use this to get a fresh one)."""
    global _manager
    with _manager_lock:
        _manager = None
