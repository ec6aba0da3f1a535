"""What the unlearning orchestrator needs from a domain (vision, LLM, or a third-party one).

A domain is registered through ``grokplug_register_domains`` under the name that methods give as
their ``domain`` attribute. The orchestrator (:func:`grokplug.unlearn`) never imports a domain
package: it looks the domain up and calls these methods. The built-in ones are
``grokplug/vision/domain.py`` and ``grokplug/llm/domain.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ._monitor import Probe
from .errors import UsageError

__all__ = ["AnalysisData", "MonitorSettings", "RunOutcome", "UnlearningDomain"]


@dataclass
class MonitorSettings:
    """How the orchestrator wants the method watched: the probe, the threshold and the hook callback."""

    probe: Probe | None
    target: float | None
    eval_every: int = 1
    stop_at_target: bool = True
    on_eval: Callable[[int, dict[str, float]], bool | None] | None = None


@dataclass
class RunOutcome:
    """What the monitor saw while a method ran (see :class:`grokplug.UnlearnResult` for the fields)."""

    model: Any
    steps: int
    steps_to_target: int | None = None
    met_at_start: bool = False
    stopped_early: bool = False
    trail: list[tuple[int, float, float]] = field(default_factory=list)
    accelerator: Any = None


@dataclass
class AnalysisData:
    """What :func:`grokplug.analysis.analyse_run` needs of a run's split, supplied by its domain.

    ``forget``/``retain``/``train``/``test`` are ``(inputs, targets)`` tensors (one full batch) or loaders
    of such batches, read in dataset order; ``loss_fn(model(inputs), targets)`` is the batch *mean* over
    examples (the gradients and Hessian-vector products weight batches by their size);
    ``score(model, part)`` is the accuracy on ``"forget"``, ``"retain"`` or ``"test"``;
    ``features(model, part_data)`` the [n, d] representation CKA compares (row i = example i).
    """

    forget: Any
    retain: Any
    train: Any
    test: Any | None
    loss_fn: Callable[[Any, Any], Any]
    score: Callable[[Any, str], float]
    features: Callable[[Any, Any], Any]
    #: what ``features`` captures, for the report (e.g. ``"fc2 (input)"``)
    layer: str
    #: the loss's name in the report (``"ce"``, ``"mse"``, ``"answer-token ce"``)
    loss_name: str
    #: what the ``test`` part is (vision: the held-out set; LLM: held-out phrasings of retain facts)
    test_set: str = "test"
    #: applied to each loaded model before it is measured (LLM: attention that can be differentiated twice)
    prepare_model: Callable[[Any], Any] | None = None


class UnlearningDomain:
    """Base class of a domain plugin. Subclasses set ``name`` and override what differs.

    * ``options``: the keyword options :func:`grokplug.unlearn` accepts for this domain (e.g.
      ``forget_rate`` for vision, ``forget_split`` / ``lora`` for LLM); others are refused.
    * ``default_target``: the target used when the caller gives none.
    * ``report_keys``: the metrics ``grokplug unlearn`` prints, in order.
    * ``damage_metrics``: metrics compare aggregates and pairs (``*_drop``: positive = damage);
      ``compare_columns`` the ones its markdown table shows.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()
    default_target: ClassVar[str | None] = "frac:0.5"
    default_forget_rates: ClassVar[tuple[float, ...]] = (0.15, 0.5)
    report_keys: ClassVar[tuple[str, ...]] = ("forget_acc", "retain_acc")
    damage_metrics: ClassVar[tuple[str, ...]] = ("forget_acc", "retain_acc", "retain_drop")
    #: compare's per-start table: ``(stage, metric, header)``; stage ``at_target`` or ``final``
    compare_columns: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("at_target", "retain_acc", "retain acc @target"), ("at_target", "retain_drop", "retain drop @target"),
        ("final", "forget_acc", "final forget"), ("final", "retain_acc", "final retain"),
    )
    #: whether the data has a held-out test set (the ``test`` target needs one)
    has_test_set: ClassVar[bool] = False

    def check_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(sorted(self.options)) or "none"
            raise UsageError(f"{self.name} unlearning takes no option(s) {', '.join(unknown)}; it takes: {accepted}")

    def run_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> Any:
        """The forget/retain (and test) data of a run, for the given options (forget rate, split ...)."""
        raise UsageError(f"domain {self.name!r} cannot build data for a run; pass splits=")

    def check_data(self, data: Any) -> None:
        """Refuse data no method may run on (an empty forget set, overlapping splits)."""

    def probe(self, data: Any) -> Probe | None:
        """``model -> {"forget_acc", "retain_acc"}`` for the step monitor, or ``None`` if the data has none."""
        return None

    def evaluate(self, model: Any, data: Any, *, seed: int, start: Mapping[str, Any] | None,
                 reference: Mapping[str, Any] | None, options: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics of ``model`` on ``data`` (``start``: the start's metrics, for the drops)."""
        probe = self.probe(data)
        return dict(probe(model)) if probe is not None else {}

    def reference(self, source: Any, data: Any, *, seed: int, target: Any,
                  options: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The retrained-on-retain reference (its ``forget_acc`` is the ``retrain`` target), or ``None``."""
        if target == "retrain":
            raise UsageError(f"domain {self.name!r} has no retrain reference; pass retrain_metrics=")
        return None

    def prepare_model(self, model: Any, accelerator: Any, options: Mapping[str, Any]) -> tuple[Any, Any]:
        """Place (and possibly wrap) the model; returns ``(model, accelerator)``."""
        return model, accelerator

    def run_method(self, method: Any, model: Any, data: Any, params: Mapping[str, Any], monitor: MonitorSettings,
                   options: Mapping[str, Any]) -> RunOutcome:
        raise NotImplementedError

    def save_model(self, model: Any, directory: Path, options: Mapping[str, Any]) -> None:
        """Write the unlearned weights into ``directory`` (a fresh temporary directory; safetensors only)."""
        from ._accelerate import unwrap
        from ._tensor_files import snapshot_state_dict, write_safetensors

        write_safetensors(snapshot_state_dict(unwrap(model)), directory / "model.safetensors")

    def result_fields(self, result: Any) -> dict[str, Any]:
        """Extra fields of ``result.json`` for this domain."""
        return {}

    def extra_files(self, result: Any) -> dict[str, Any]:
        """Extra JSON files written beside ``result.json`` (name -> content)."""
        return {}

    def split_info(self, data: Any) -> dict[str, Any] | None:
        """The split's description: at least ``forget_sha256`` and ``retain_sha256`` (compare pairs on them)."""
        split = getattr(data, "split", None)
        return split.to_dict() if split is not None else None

    def analysis_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> AnalysisData:
        """The split, loss and representation :func:`grokplug.analysis.analyse_run` measures θ_pre/θ_grok on."""
        raise UsageError(f"domain {self.name!r} supplies no analysis data (UnlearningDomain.analysis_data)")

    def compare_options(self, forget_rate: float) -> dict[str, Any]:
        """The ``run_data`` options for one forget rate of a compare matrix."""
        return {"forget_rate": forget_rate}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
