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

from ._hook_calls import HookCalls, one_line
from ._registry import Registry
from .errors import GrokplugError, GrokplugWarning, PluginError

if TYPE_CHECKING:

    pass

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


class GrokplugPluginManager(HookCalls):
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
                    self.failed.append({"name": ep.name, "distribution": dist_name, "error": one_line(exc)})
                    warnings.warn(
                        f"plugin {ep.name!r} (distribution {dist_name} {dist.version}) failed to load and was "
                        f"skipped: {one_line(exc)}",
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
