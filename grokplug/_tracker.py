"""GrokTracker: follow a training run through grokking, keep the right checkpoints, report phases.

One object serves three kinds of loop:

* a plain PyTorch loop: ``tracker.log_eval(step, train_acc=..., val_acc=..., model=model)``;
* the HF Trainer: :class:`grokplug.GrokTrackerCallback` drives the same calls;
* accelerate multi-process: pass ``accelerator=``; rank 0 writes, the others wait, and every rank
  gets the same report from :meth:`close`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ._atomic import RunLock
from ._detect import GrokReport, PhaseChange
from ._online import OnlineDetector
from ._retention import RetentionPolicy
from ._rundir import CHECKPOINTS, RunDir
from ._saver import BackgroundWriter, InlineWriter
from ._tracker_open import RunOpening, is_main_process_of
from ._tracker_saves import CheckpointSaving, PendingSave
from ._validate import check_step, finite_metric
from .errors import UsageError
from .plugins import get_plugin_manager


class GrokTracker(RunOpening, CheckpointSaving):
    """Track one run in ``run_dir``.

    :param config: the training recipe (recorded; a resumed run must match it except ``max_steps``).
    :param seed: recorded with every checkpoint.
    :param splits: an object or mapping with ``train_indices``, ``val_indices`` and
        ``forget_eligible`` (e.g. a :class:`grokplug.PresetData`); written to ``splits.json`` and hashed.
    :param save_every: save a checkpoint on eval steps divisible by this (``None``: every eval
        that passes a model).
    :param retention: which checkpoints to keep (default: log-spaced plus detector candidates).
    :param detector_params: overrides for the phase detector.
    :param async_save: write checkpoints on a background thread.
    :param durable_every_s: seconds between durable points. Every save is atomic (a killed process
        loses nothing written), but only a durable point is fsynced against a power loss: every
        ``durable_every_s``, at :meth:`flush` and at :meth:`close` (see ``grokplug._durability``).
    :param resume_every_s: a save that retention keeps only as the latest checkpoint (the resume point,
        deleted again by the next save) is held in memory instead of written, unless the last written
        checkpoint is this many seconds old. It is written at :meth:`flush`, :meth:`close` and when the
        loop raises; a killed process resumes from the last written one. ``0`` writes every save.
        At most one snapshot is held, in host memory, and only while saves come faster than this.
    :param resume: continue an unfinished run found in ``run_dir``; ``False`` refuses an existing run.
    :param overwrite: delete an existing grokplug run in ``run_dir`` and start afresh.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        splits: Any = None,
        save_every: int | None = None,
        retention: RetentionPolicy | None = None,
        detector_params: Mapping[str, Any] | None = None,
        async_save: bool = True,
        durable_every_s: float = 30.0,
        resume_every_s: float = 30.0,
        resume: bool = True,
        overwrite: bool = False,
        accelerator: Any = None,
    ) -> None:
        self.path = Path(run_dir)
        self.config = dict(config or {})
        self.seed = seed
        self.save_every = save_every
        self.retention = retention or RetentionPolicy()
        self.detector_params = dict(detector_params or {})
        self.durable_every_s = finite_metric(durable_every_s, "durable_every_s")
        self.resume_every_s = finite_metric(resume_every_s, "resume_every_s")
        for name, value in (("durable_every_s", durable_every_s), ("resume_every_s", resume_every_s)):
            if value < 0:
                raise UsageError(f"{name} must be >= 0 seconds, got {value}")
        self._last_durable = time.monotonic()
        self.accelerator = accelerator
        self.is_main = is_main_process_of(accelerator)
        self._pm = get_plugin_manager()
        self._transforms = self._pm.has_gradient_transforms()
        self._lock = RunLock(self.path)
        self._closed = False
        self.start_step = 0
        self._last_step: int | None = None  # log_eval refuses steps that do not increase
        self._final: GrokReport | None = None
        self.run: RunDir | None = None
        self.detector = OnlineDetector(**self.detector_params)
        if self.is_main:
            self._open(splits, resume=resume, overwrite=overwrite)
        self._sync_ranks()
        self._held: PendingSave | None = None  # the newest checkpoint, kept only to resume from, not written yet
        self._last_write = time.monotonic()
        self._writer = (BackgroundWriter() if async_save else InlineWriter()) if self.is_main else InlineWriter()

    # -- training-loop calls -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The online detector's current phase (``fitting``, ``plateau``, ``grokked`` ...)."""
        return self.detector.state

    def is_save_step(self, step: int) -> bool:
        return self.save_every is None or step % self.save_every == 0

    def before_optimizer_step(self, model: torch.nn.Module, step: int) -> None:
        """Call between ``backward()`` and ``optimizer.step()``: lets gradient-transform plugins act."""
        if self._transforms:
            self._pm.transform_gradients(model, step)

    def log_eval(
        self,
        step: int,
        *,
        train_acc: float,
        val_acc: float,
        train_loss: float | None = None,
        val_loss: float | None = None,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        **extra: float,
    ) -> PhaseChange | None:
        """Record one evaluation; with ``model=`` also save a checkpoint on save steps."""
        if self._closed:
            raise UsageError("this GrokTracker is closed")
        step = check_step(step, "log_eval step")
        if self._last_step is not None and step <= self._last_step:  # would overwrite a kept checkpoint
            raise UsageError(f"log_eval step {step} is not after the last logged step {self._last_step}; steps must increase")
        record: dict[str, Any] = {"step": step}
        for key, value in (("train_acc", train_acc), ("val_acc", val_acc), ("train_loss", train_loss),
                           ("val_loss", val_loss), *extra.items()):
            if value is not None:
                record[key] = finite_metric(value, f"log_eval metric {key!r}")
        self._last_step = step
        saving = model is not None and self.is_save_step(step)
        record["saved"] = saving
        change = self.detector.update(record, saved=saving)
        if not self.is_main:
            return change
        assert self.run is not None
        self.run.append_history(record)
        if saving:
            assert model is not None
            self._submit_save(step, record, model, optimizer)
        if change is not None:
            change = replace(change, run_dir=self.path)
            self._writer.submit(partial(self.run.write_report, self.detector.report(), durable=False))
            self._pm.phase_changed(change)
        return change

    def maybe_save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> bool:
        """Save a checkpoint on a save step without an eval record (prefer ``log_eval(model=...)``)."""
        if not self.is_main or not self.is_save_step(step):
            return False
        self._submit_save(step, {"step": int(step)}, model, optimizer)
        return True

    # -- results -------------------------------------------------------------------------------

    def report(self) -> GrokReport:
        """The phase report for what has been logged so far."""
        return self._final or self.detector.report()

    def flush(self) -> None:
        """Write the held resume point, wait for pending checkpoint writes, then make them durable (fsynced)."""
        self._writer.flush(last=self._write_held)
        if self.is_main and self.run is not None:
            self.run.write_manifest()
            self._last_durable = time.monotonic()

    def close(self) -> GrokReport:
        """Finish the run: wait for writes, detect phases, pin θ_pre/θ_grok, write ``grok.json``."""
        if self._final is not None:
            return self._final
        report: GrokReport | None = None
        try:
            if self.is_main:
                self._writer.close(last=self._write_held)
                report = self._finalise()
        finally:
            self._closed = True
            self._lock.release()
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            payload = [report.to_dict() if report is not None else None]
            broadcast_object_list(payload, from_process=0)
            report = GrokReport.from_dict(payload[0]) if payload[0] is not None else None
        assert report is not None
        self._final = report
        return report

    def _finalise(self) -> GrokReport:
        run = self.run
        assert run is not None
        history = run.history()
        ever_saved = sorted(self.detector.checkpoint_steps)
        report = self._pm.detect_phases(history, self.detector_params, ever_saved)
        existing = set(run.checkpoint_steps())
        if any(s is not None and s not in existing for s in (report.pre_step, report.pre_matched_step, report.grok_step)):
            report = self._pm.detect_phases(history, self.detector_params, sorted(existing))
            report.reasons.append("a chosen checkpoint had been pruned; the choice was remade among kept checkpoints")
        run.write_report(report)  # first: a finished manifest must never point at a stale grok.json
        chosen = (("pre", report.pre_step), ("pre-matched", report.pre_matched_step), ("grok", report.grok_step))
        run.manifest["pins"] = {k: v for k, v in chosen if v is not None}
        run.manifest["status"] = "finished"
        run.manifest["label"] = report.label
        run.write_manifest()
        return report

    def __enter__(self) -> GrokTracker:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was written; the run stays resumable
            try:
                self._writer.close(last=self._write_held_best_effort)
                if self.is_main and self.run is not None:
                    # a durable point for the resume, best effort: the error that is unwinding is the news
                    with contextlib.suppress(Exception):
                        self.run.write_manifest()
            finally:
                self._closed = True
                self._lock.release()


__all__ = ["GrokTracker", "CHECKPOINTS"]
