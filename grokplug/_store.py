"""Checkpoint folders of a run: written atomically, named by the manifest, pruned, verified on load.

The tensors themselves (snapshots, safetensors files, pickle-free loading) are :mod:`grokplug._tensor_files`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ._atomic import create_temp, describe_os_error, make_private_dir, outer_indented_json, sha256_file
from ._durability import write_file as write_checkpoint_file
from ._rundir import CHECKPOINTS, RunDir, checkpoint_dirname
from ._tensor_files import (
    OptimizerSnapshot,
    Snapshot,
    load_weights,
    snapshot_optimizer,
    snapshot_state_dict,
    unflatten_optimizer,
    write_safetensors,
)

WEIGHTS = "model.safetensors"
META = "meta.json"
OPTIMIZER = "optimizer.safetensors"
__all__ = [  # the tensor-file functions are used through this module too
    "META", "OPTIMIZER", "WEIGHTS", "OptimizerSnapshot", "Snapshot", "clean_orphans", "delete_checkpoint",
    "drop_optimizer_state", "load_optimizer", "load_weights", "prune_checkpoints", "save_checkpoint",
    "snapshot_optimizer", "snapshot_state_dict", "unflatten_optimizer", "write_safetensors",
]


def _write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Write a safetensors file; returns its sha256 and size.

    Written by safetensors' own file writer, which releases the GIL (``save`` to bytes holds it, and a
    background save holding the GIL stalls the training thread), then hashed from the page cache.
    """
    write_safetensors(tensors, path, metadata)
    return sha256_file(path), os.stat(path).st_size


def save_checkpoint(
    run: RunDir,
    step: int,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    *,
    optimizer: OptimizerSnapshot | None = None,
    drop_optimizer: Iterable[int] = (),
    delete: Iterable[int] = (),
    durable: bool = True,
) -> dict[str, Any]:
    """Write one checkpoint and name it in the manifest. Returns its manifest entry.

    The folder is assembled under a temporary name and renamed into place, then the manifest is
    replaced atomically: a crash at any point leaves the previous manifest and checkpoints intact.
    ``drop_optimizer``/``delete`` prune older checkpoints (:func:`prune_checkpoints`) in the same
    manifest write, so a tracker save costs one manifest write, not two. ``durable=False`` (the
    tracker's saves between durable points) skips the fsyncs; see :mod:`grokplug._durability`.
    """
    root = run.checkpoints_root()  # refused before anything is written if it leads out of the run
    final = root / checkpoint_dirname(step)
    try:
        tmp, _ = create_temp(root, f".tmp-{final.name}-", "", make_private_dir)
        try:
            digest, size = _write_tensors(tmp / WEIGHTS, tensors, {"format": "pt", "step": str(step)})
            entry: dict[str, Any] = {
                "path": f"{CHECKPOINTS}/{final.name}/{WEIGHTS}",
                "meta": f"{CHECKPOINTS}/{final.name}/{META}",
                "sha256": digest,
                "bytes": size,
            }
            meta_out = {**dict(meta), "step": int(step), "sha256": digest, "weights": WEIGHTS}
            files = [WEIGHTS, META]
            if optimizer is not None:
                opt_tensors, meta_out["optimizer"] = optimizer
                entry["optimizer"] = f"{CHECKPOINTS}/{final.name}/{OPTIMIZER}"
                entry["optimizer_sha256"], _ = _write_tensors(tmp / OPTIMIZER, opt_tensors)
                files.append(OPTIMIZER)
            # json's C encoder: a third of indent=2's time
            write_checkpoint_file(tmp / META, (outer_indented_json(meta_out, 1) + "\n").encode())
            try:
                os.replace(tmp, final)
            except OSError:  # re-saving a step after a resume: replace the stale copy (rare: no check first)
                if not final.is_dir():
                    raise
                shutil.rmtree(final)
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        run.wrote_checkpoint(step, files)
        run.pending_sync.add(final)  # a durable manifest write flushes it (files, then the folder) first
        entries = run.manifest.setdefault("checkpoints", {})
        entries[str(int(step))] = entry
        latest = run.manifest.get("latest_step")
        run.manifest["latest_step"] = int(step) if latest is None else max(int(latest), int(step))
        stale_files, stale_folders = _unlist(run, drop_optimizer, (s for s in delete if int(s) != int(step)))
        run.write_manifest(durable=durable)
    except OSError as exc:
        raise describe_os_error(exc, f"save checkpoint {step} in", run.path) from exc
    _remove(stale_files, stale_folders)
    return entry


def drop_optimizer_state(run: RunDir, step: int) -> None:
    """Delete the optimizer state of an older checkpoint (only the latest is needed to resume)."""
    prune_checkpoints(run, drop_optimizer=[step])


def delete_checkpoint(run: RunDir, step: int) -> None:
    """Remove a checkpoint from the manifest first, then from disk (a crash leaves only an orphan)."""
    prune_checkpoints(run, delete=[step])


def prune_checkpoints(run: RunDir, *, drop_optimizer: Iterable[int] = (), delete: Iterable[int] = ()) -> None:
    """Drop the optimizer state of ``drop_optimizer`` and delete the ``delete`` checkpoints, with one manifest write.

    The manifest stops naming the files first, then they are removed: a crash in between leaves only
    orphans, which :func:`clean_orphans` removes on the next open.
    """
    files, folders = _unlist(run, drop_optimizer, delete)
    if not files and not folders:
        return
    run.write_manifest()
    _remove(files, folders)


def _unlist(
    run: RunDir, drop_optimizer: Iterable[int], delete: Iterable[int]
) -> tuple[list[Path], list[tuple[Path, list[Path]]]]:
    """Take the given optimizer states and checkpoints out of the in-memory manifest; returns what to remove:
    files, and folders with the files the manifest named in them."""
    entries = run.manifest.get("checkpoints", {})
    files: list[Path] = []
    folders: list[tuple[Path, list[Path]]] = []
    for step in drop_optimizer:
        entry = entries.get(str(int(step)))
        if entry and "optimizer" in entry:
            files.append(run.checkpoint_file(step, entry.pop("optimizer")))
            entry.pop("optimizer_sha256", None)
    for step in delete:
        entry = entries.pop(str(int(step)), None)
        if entry is not None:
            folder = run.checkpoint_file(step, entry["path"]).parent
            named = [run.checkpoint_file(step, entry[key]) for key in ("path", "meta", "optimizer") if key in entry]
            folders.append((folder, [path for path in named if path.parent == folder]))
    if folders and run.manifest.get("latest_step") is not None and str(run.manifest["latest_step"]) not in entries:
        run.manifest["latest_step"] = max((int(s) for s in entries), default=None)  # the latest was deleted
    return files, folders


def _remove(files: Iterable[Path], folders: Iterable[tuple[Path, list[Path]]]) -> None:
    """Delete what the manifest no longer names; a file that will not go is an orphan, cleaned on resume."""
    for path in files:
        with contextlib.suppress(OSError):
            os.unlink(path)
    for folder, named in folders:
        try:  # the files the manifest named: cheaper than walking the folder
            for path in named:
                os.unlink(path)
            os.rmdir(folder)
        except OSError:  # something else in there, or already gone
            shutil.rmtree(folder, ignore_errors=True)


def clean_orphans(run: RunDir) -> list[str]:
    """Remove checkpoint folders the manifest does not name, and temp files of interrupted atomic writes.

    Both are left by a crash mid-save; the caller holds the run's writer lock.
    """
    root = run.path / CHECKPOINTS
    named = {Path(e["path"]).parent.name for e in run.manifest.get("checkpoints", {}).values()}
    removed = []
    for stale in run.path.glob(".*.tmp"):  # `.manifest.json.<random>.tmp` etc. (see _atomic.atomic_path)
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale.name)
    for child in root.iterdir() if root.exists() else []:
        if child.is_dir() and child.name not in named:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    return removed


def load_optimizer(run: RunDir, step: int) -> tuple[dict[str, Any], torch.Tensor | None] | None:
    """The optimizer state and RNG state saved with a checkpoint, or ``None`` if not kept."""
    entry = run.checkpoint_entry(step)
    if "optimizer" not in entry:
        return None
    tensors = load_weights(run.resolve_inside(entry["optimizer"]), entry.get("optimizer_sha256"))
    structure = run.checkpoint_meta(step).get("optimizer", {})
    rng = tensors.pop("rng.torch", None)
    return unflatten_optimizer(tensors, structure), rng
