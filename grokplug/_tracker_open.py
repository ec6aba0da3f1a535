"""How a :class:`~grokplug.GrokTracker` opens its run dir: create it, or resume it (same config and seed,
history cut back to the last resumable checkpoint), share the resume step across ranks, and restore the
model and optimizer. The training-loop calls are in grokplug/_tracker.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from . import _store
from ._atomic import RunLock, sha256_ints
from ._online import OnlineDetector
from ._paths import clear_run
from ._retention import RetentionPolicy
from ._rundir import MANIFEST, RunDir
from .errors import GrokplugWarning, RunDirError, UsageError

__all__ = ["RunOpening", "is_main_process_of"]

_SPLIT_KEYS = ("train_indices", "val_indices", "forget_eligible")
_RESUMABLE_CONFIG_KEYS = {"max_steps"}  # may change between a run and its resumption


def _splits_of(data: Any) -> dict[str, Any] | None:
    if data is None:
        return None
    get: Any = data.get if isinstance(data, Mapping) else lambda k, d=None: getattr(data, k, d)
    splits: dict[str, Any] = {k: [int(i) for i in get(k)] for k in _SPLIT_KEYS if get(k) is not None}
    if get("num_classes") is not None:
        splits["num_classes"] = int(get("num_classes"))
    if get("info") is not None:
        splits["info"] = dict(get("info"))
    return splits


def is_main_process_of(accelerator: Any) -> bool:
    from ._accelerate import is_main_process

    return is_main_process(accelerator)


class RunOpening:
    """The run-dir side of :class:`~grokplug.GrokTracker` (its base class; the attributes are set by its ``__init__``)."""

    path: Path
    config: dict[str, Any]
    seed: int | None
    retention: RetentionPolicy
    detector_params: dict[str, Any]
    accelerator: Any
    is_main: bool
    start_step: int
    detector: OnlineDetector
    run: RunDir | None
    _lock: RunLock
    _last_step: int | None

    # -- opening / resuming --------------------------------------------------------------------

    def _open(self, splits: Any, *, resume: bool, overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path} is an existing file, not a run directory")
        if (self.path / MANIFEST).exists():
            RunDir(self.path)  # a manifest.json that does not parse as a run is someone else's file: refused
        elif self.path.exists() and any(p.name not in (".lock", ".lock.owner") for p in self.path.iterdir()):
            raise RunDirError(f"{self.path} exists and is not a grokplug run directory; refusing to write into it")
        self._lock.acquire()
        try:
            if RunDir.exists(self.path) and overwrite:
                kept = clear_run(self.path)  # only the files the run format owns
                if kept:
                    warnings.warn(f"--overwrite kept {len(kept)} file(s) in {self.path} that are not part of the run: "
                                  f"{', '.join(kept[:5])}", GrokplugWarning, stacklevel=3)
            if RunDir.exists(self.path):
                if not resume:
                    raise UsageError(f"{self.path} already holds a run; pass resume=True to continue it or overwrite=True")
                self._resume()
            else:
                self._create(splits)
        except BaseException:
            self._lock.release()
            raise

    def _create(self, splits: Any) -> None:
        split_data = _splits_of(splits)
        data_hashes: dict[str, Any] = {}
        if split_data:
            data_hashes = {f"{k}_sha256": sha256_ints(split_data[k]) for k in _SPLIT_KEYS if k in split_data}
            data_hashes.update({f"n_{k}": len(split_data[k]) for k in _SPLIT_KEYS if k in split_data})
        run_info = {
            "config": self.config,
            "seed": self.seed,
            "data": data_hashes,
            "retention": self.retention.to_dict(),
            "detector_params": self.detector_params,
        }
        self.run = RunDir.create(self.path, run_info)
        if split_data:
            self.run.write_splits(split_data)

    def _resume(self) -> None:
        run = RunDir(self.path)
        if run.status == "finished":
            raise UsageError(f"{self.path} holds a finished run; inspect it, or pass overwrite=True (CLI: --overwrite) to train again")
        recorded = {k: v for k, v in run.config.items() if k not in _RESUMABLE_CONFIG_KEYS}
        wanted = {k: v for k, v in self.config.items() if k not in _RESUMABLE_CONFIG_KEYS}
        if self.config and recorded != wanted:
            diff = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
            raise UsageError(f"{self.path} was started with a different config (differs in: {', '.join(diff)})")
        if self.seed is not None and run.seed is not None and run.seed != self.seed:
            raise UsageError(f"{self.path} was started with seed {run.seed}, not {self.seed}")
        _store.clean_orphans(run)
        latest = run.latest_step
        resumable = latest is not None and "optimizer" in run.checkpoint_entry(latest)
        self.start_step = int(latest) if resumable and latest is not None else 0
        history: list[Mapping[str, Any]] = [r for r in run.history() if resumable and r["step"] <= self.start_step]
        run.rewrite_history(history)
        if not resumable:  # nothing to continue from: start the run over in place
            for step in run.checkpoint_steps():
                _store.delete_checkpoint(run, step)
        saved = [r["step"] for r in history if r.get("saved")]
        self.detector = OnlineDetector.replay(history, saved, **self.detector_params)
        self._last_step = max((r["step"] for r in history), default=None)
        self.config = self.config or run.config
        self.run = run

    def _sync_ranks(self) -> None:
        """Under accelerate, every rank learns the resume step from rank 0 and replays the same history."""
        if self.accelerator is None or self.accelerator.num_processes <= 1:
            return
        from accelerate.utils import broadcast_object_list

        payload = [self.start_step]
        broadcast_object_list(payload, from_process=0)  # also a barrier: rank 0 has opened the run
        if not self.is_main and payload[0]:
            self.start_step = int(payload[0])
            history = [r for r in RunDir(self.path).history() if r["step"] <= self.start_step]
            saved = [r["step"] for r in history if r.get("saved")]
            self.detector = OnlineDetector.replay(history, saved, **self.detector_params)
            self._last_step = max((r["step"] for r in history), default=None)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Load the state to continue from into ``model``/``optimizer``; returns the step to resume at (0: fresh).

        Every rank reads the same checkpoint (rank 0 does not write while the others read it here).
        """
        if self.start_step == 0:
            return 0
        run = self.run if self.run is not None else RunDir(self.path)
        entry = run.checkpoint_entry(self.start_step)
        tensors = _store.load_weights(run.resolve_inside(entry["path"]), entry["sha256"])
        model.load_state_dict(tensors)
        saved = _store.load_optimizer(run, self.start_step)
        if saved is not None:
            state, rng = saved
            if optimizer is not None:
                optimizer.load_state_dict(state)
            if rng is not None:
                torch.set_rng_state(rng)
        return self.start_step

