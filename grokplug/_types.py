"""Value objects that cross the hook boundary: what a method asks for and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Phase = Literal["grok", "pre", "pre-matched", "final", "best"]
PHASES: tuple[str, ...] = ("grok", "pre", "pre-matched", "final", "best")


@dataclass(frozen=True)
class CheckpointRequest:
    """A request for a starting checkpoint, passed to ``grokplug_resolve_checkpoint``.

    ``source`` is whatever identifies a tracked run to the providers: the built-in provider
    understands a local run directory; a plugin may understand a hub revision or a tracker URI.
    ``phase`` names which checkpoint: ``grok`` (θ_grok), ``pre`` (θ_pre by the paper's rule: early
    stopping from the first eval, before the grokking onset), ``pre-matched`` (θ_pre by the
    matched-train rule: early stopping from t_mem, so it fits the training set), ``final`` (the latest) or ``best`` (highest validation accuracy). ``fallback`` is the phase to
    serve instead when ``grok`` is requested from a run that never grokked (``None``: raise).
    """

    source: str
    phase: str = "grok"
    fallback: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointRef:
    """A resolved, verifiable checkpoint: enough to load the weights and to say where they came from."""

    phase: str
    step: int
    path: Path
    sha256: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    provider: str = "local-run-dir"
    requested_phase: str | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        out["metrics"] = dict(self.metrics)
        return out


@dataclass(frozen=True)
class RunHistory:
    """An eval history and its saved checkpoint steps, read from a run another tool wrote."""

    source: str
    kind: str
    history: list[dict[str, Any]]
    checkpoint_steps: list[int]
    detector_params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, step: int) -> dict[str, Any]:
        return next((dict(r) for r in self.history if r["step"] == step), {"step": step})
