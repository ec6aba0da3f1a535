"""How a :class:`~grokplug.GrokTracker` saves: snapshot on the training thread, then write, hold or skip
on the writer. Most saves of a fast run are deleted again by the next one (retention keeps them only as
the latest, to resume from), so such a save is held in memory and written only when it is still the
latest at :meth:`flush`/:meth:`close`, or when the last written checkpoint is ``resume_every_s`` old.
The training-loop calls are in grokplug/_tracker.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from . import _store
from ._online import OnlineDetector
from ._resolve import unwrap_model
from ._retention import RetentionPolicy
from ._rundir import RunDir
from ._saver import BackgroundWriter, InlineWriter
from ._types import CheckpointRef
from .plugins import GrokplugPluginManager

__all__ = ["CheckpointSaving", "PendingSave"]


@dataclass(frozen=True)
class PendingSave:
    """One save: snapshotted on the training thread, then written, held or skipped by the writer.

    At most one is held (besides the writer's queue of two): saves that come less often than
    ``resume_every_s`` are written at once, so a model whose save takes that long is never held.
    """

    step: int
    record: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    optimizer: _store.OptimizerSnapshot | None
    meta: dict[str, Any]
    protected: frozenset[int]  # the detector's candidates when it was logged


class CheckpointSaving:
    """The checkpoint side of :class:`~grokplug.GrokTracker` (its base class; the attributes are set by its ``__init__``)."""

    config: dict[str, Any]
    seed: int | None
    retention: RetentionPolicy
    detector: OnlineDetector
    run: RunDir | None
    durable_every_s: float
    resume_every_s: float
    _pm: GrokplugPluginManager
    _writer: BackgroundWriter | InlineWriter
    _held: PendingSave | None
    _last_write: float
    _last_durable: float

    def _submit_save(
        self, step: int, record: Mapping[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer | None
    ) -> None:
        inner = unwrap_model(model)
        save = PendingSave(
            step=step,
            record=dict(record),
            tensors=_store.snapshot_state_dict(inner),  # copy now; the loop keeps training
            optimizer=_store.snapshot_optimizer(optimizer) if optimizer is not None else None,
            meta={
                "metrics": dict(record),
                "config": self.config,
                "seed": self.seed,
                "data": self.run.run_info.get("data", {}) if self.run else {},
                "model_class": f"{type(inner).__module__}.{type(inner).__qualname__}",
            },
            protected=frozenset(self.detector.protected_steps()),
        )
        self._writer.submit(partial(self._save_job, save))

    # The jobs below run on the writer, one at a time, in submission order.

    def _save_job(self, new: PendingSave) -> None:
        """Write the new checkpoint, hold it in memory (only the resume point), or skip it (retention drops it)."""
        run = self.run
        assert run is not None
        held, self._held = self._held, None
        on_disk = set(run.checkpoint_steps())
        saved = on_disk | {new.step} | ({held.step} if held is not None else set())
        protected = new.protected | set(run.pins.values())
        keep = self.retention.keep(saved, protected)
        if held is not None and held.step in keep:  # protected since it was held: written now, from its snapshot
            self._write(held, delete=set())
        if new.step not in keep:  # a policy that would delete it at once: not worth serialising
            _store.prune_checkpoints(run, delete=on_disk - keep)
            return
        if (self.retention.only_the_resume_point(new.step, saved, protected)
                and time.monotonic() - self._last_write < self.resume_every_s):
            # the next save would delete it again; the checkpoint on disk stays the resume point
            self._held = new
            return
        self._write(new, delete=saved - keep)

    def _write_held(self) -> None:
        """Write the checkpoint held as the resume point (at flush, close, and when the loop raises)."""
        held, self._held = self._held, None
        if held is None or self.run is None:
            return
        saved = set(self.run.checkpoint_steps()) | {held.step}
        self._write(held, delete=saved - self.retention.keep(saved, held.protected | set(self.run.pins.values())))

    def _write_held_best_effort(self) -> None:
        """As :meth:`_write_held` while an exception unwinds the loop: that exception is the news, not this."""
        with contextlib.suppress(Exception):
            self._write_held()

    def _write(self, save: PendingSave, delete: set[int]) -> None:
        run = self.run
        assert run is not None
        previous = run.latest_step  # only the latest optimizer state is needed to resume
        stale_opt = [previous] if save.optimizer is not None and previous is not None and previous != save.step else []
        now = time.monotonic()
        durable = now - self._last_durable >= self.durable_every_s
        # what retention drops goes out in the same manifest write that names the new checkpoint
        entry = _store.save_checkpoint(run, save.step, save.tensors, save.meta, optimizer=save.optimizer,
                                       drop_optimizer=stale_opt, delete=delete, durable=durable)
        if durable:
            self._last_durable = now
        self._last_write = now
        ref = CheckpointRef(
            phase="candidate", step=save.step, path=run.checkpoint_file(save.step, entry["path"]), sha256=entry["sha256"],
            metrics=dict(save.record), run_dir=run.path, provider="tracker",
        )
        self._pm.checkpoint_saved(ref)
