"""grokplug: grok-aware starting checkpoints for machine-unlearning toolkits.

Plugin authors::

    from grokplug import hookimpl

Users::

    import grokplug
    tracker = grokplug.GrokTracker("runs/m")            # track a training run
    report = grokplug.detect_phases(history)            # classify it, pick θ_pre / θ_grok
    ref = grokplug.request_checkpoint("runs/m", phase="grok")
    grokplug.load_checkpoint(model, "runs/m", phase="grok")

    @grokplug.grok_aware("runs/m", phase="grok")
    def my_unlearning(model, forget_loader, retain_loader): ...

Heavy modules (torch, transformers) load on first use of the names that need them, so
``import grokplug`` and ``grokplug plugins`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from grokplug.hooks import hookimpl

from ._types import PHASES, CheckpointRef, CheckpointRequest
from ._version import __version__
from .errors import GrokplugError
from .plugins import get_plugin_manager

# name -> module that defines it (imported lazily, PEP 562)
_LAZY: dict[str, str] = {
    "GrokReport": "grokplug._detect",
    "PhaseChange": "grokplug._detect",
    "OnlineDetector": "grokplug._online",
    "detect_phases": "grokplug._phases",
    "GrokTracker": "grokplug._tracker",
    "GrokTrackerCallback": "grokplug._hf",
    "RunDir": "grokplug._rundir",
    "RetentionPolicy": "grokplug._retention",
    "request_checkpoint": "grokplug._resolve",
    "load_checkpoint": "grokplug._resolve",
    "build_model": "grokplug._resolve",
    "grok_aware": "grokplug._decorator",
    "train_preset": "grokplug._train",
    "evaluate_preset": "grokplug._train",
    "preset_loss": "grokplug._train",
    "result_to_dict": "grokplug._unlearn",
    "Preset": "grokplug.presets._base",
    "PresetData": "grokplug.presets._base",
    "unlearn": "grokplug._unlearn",
    "run_data": "grokplug._unlearn",
    "sweep_strength": "grokplug._sweep",
    "UnlearningDomain": "grokplug._domain",
    "retain_only_reference": "grokplug._reference",
    "retrain_reference": "grokplug._reference",  # deprecated alias
    "AnalysisData": "grokplug._domain",
    "compare": "grokplug.compare",
    "export_checkpoint": "grokplug.export",
    "CompareResult": "grokplug.compare",
    "UnlearningMethod": "grokplug._unlearning_method",
    "UnlearnContext": "grokplug._unlearn_types",
    "UnlearnResult": "grokplug._unlearn_types",
    "Terminated": "grokplug._signals",
    "PeerLost": "grokplug._signals",
    "stop_cleanly": "grokplug._signals",
    "end_process_group": "grokplug._signals",
}

__all__ = [
    "PHASES",
    "AnalysisData",
    "CheckpointRef",
    "CheckpointRequest",
    "CompareResult",
    "GrokReport",
    "GrokTracker",
    "GrokTrackerCallback",
    "GrokplugError",
    "OnlineDetector",
    "PeerLost",
    "PhaseChange",
    "Preset",
    "PresetData",
    "RetentionPolicy",
    "RunDir",
    "Terminated",
    "UnlearnContext",
    "UnlearnResult",
    "UnlearningDomain",
    "UnlearningMethod",
    "__version__",
    "build_model",
    "compare",
    "detect_phases",
    "end_process_group",
    "evaluate_preset",
    "export_checkpoint",
    "get_plugin_manager",
    "grok_aware",
    "hookimpl",
    "load_checkpoint",
    "preset_loss",
    "request_checkpoint",
    "result_to_dict",
    "retain_only_reference",
    "retrain_reference",
    "run_data",
    "sweep_strength",
    "stop_cleanly",
    "train_preset",
    "unlearn",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grokplug' has no attribute {name!r}")
    imported = importlib.import_module(module)
    # `compare` is a callable module: keep the module itself as the attribute (its function would shadow
    # it, and `grokplug.compare._plots` would then fail depending on what was imported first)
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from ._decorator import grok_aware
    from ._detect import GrokReport, PhaseChange
    from ._domain import AnalysisData, UnlearningDomain
    from ._hf import GrokTrackerCallback
    from ._online import OnlineDetector
    from ._phases import detect_phases
    from ._reference import retain_only_reference, retrain_reference
    from ._resolve import build_model, load_checkpoint, request_checkpoint
    from ._retention import RetentionPolicy
    from ._rundir import RunDir
    from ._signals import PeerLost, Terminated, end_process_group, stop_cleanly
    from ._sweep import sweep_strength
    from ._tracker import GrokTracker
    from ._train import evaluate_preset, preset_loss, train_preset
    from ._unlearn import result_to_dict, run_data, unlearn
    from ._unlearn_types import UnlearnContext, UnlearnResult
    from ._unlearning_method import UnlearningMethod
    from .compare import CompareResult, compare
    from .export import export_checkpoint
    from .presets._base import Preset, PresetData
