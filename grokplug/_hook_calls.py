"""The plugin manager's hook calls: typed calls of every hook (``pm.resolve_checkpoint(...)`` ...) and the
attribution of a failure to the plugin that raised it (one line naming the plugin, never a traceback).

The base of :class:`grokplug.plugins.GrokplugPluginManager`, which adds the loading and the registries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from ._signals import Terminated
from .errors import CheckpointError, GrokplugError, PluginError

if TYPE_CHECKING:
    import torch

    from ._detect import GrokReport, PhaseChange
    from ._types import CheckpointRef, CheckpointRequest
    from ._unlearn_types import UnlearnContext, UnlearnResult

__all__ = ["HookCalls", "one_line", "short_repr"]


def short_repr(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HookCalls(pluggy.PluginManager):
    """pluggy's manager with typed hook calls whose failures are attributed to a plugin; the subclass loads plugins."""

    _ready: bool  # set by the subclass once load() has finished
    _tracing: bool

    def load(self) -> Any:  # pragma: no cover - the subclass loads
        raise NotImplementedError

    def _who(self, plugin_name: str) -> str:  # pragma: no cover - the subclass names plugins
        raise NotImplementedError

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
        return PluginError(f"plugin {who} failed in {hook_name}: {one_line(exc)}{stopped}", plugin=name, hook=hook_name)

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
            f"plugin {who} returned {type(result).__name__} {short_repr(result)} from {hook_name}; it must return {expected}",
            plugin=name, hook=hook_name,
        )

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
