"""When a run's files reach the disk: every save survives a crashed process, durable points a power loss.

Every checkpoint and manifest write is atomic (temp name, then rename), which is all a crashed or
killed *process* needs: the page cache outlives it. Surviving a power loss or a kernel crash also
needs ``fsync``, and on this kind of machine one fsync per save cost the ``modular`` benchmark more
than all of the tracker's own work (each forces a journal commit and a disk flush). Most of those
saves are deleted by retention one save later, so a tracker save is written without fsync, and a
**durable point** flushes everything that is still named: every ``durable_every_s`` seconds, at
``flush()`` and at ``close()``. Every other manifest write (creating a run, pinning θ_pre/θ_grok,
``grokplug`` commands) is a durable point too.

A durable point fsyncs the checkpoint files written since the last one that the manifest still
names, then the ``checkpoints/`` folder, then writes the manifest with fsync and a copy of it,
``manifest.durable.json``. If a power loss between durable points leaves ``manifest.json``
unreadable (filesystems without ext4's ordering of a replacing rename after its data can leave it
empty), the run is read from that copy instead, without the checkpoints it names that are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._atomic import fsync_dir, write_all, write_json_atomic

DURABLE_COPY = "manifest.durable.json"
_SERIAL_FSYNCS = 6  # more files than this are fsynced by a few threads at once
_FSYNC_WORKERS = 8
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "meta.json")


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data`` (a durable point flushes it); a failed write raises ``OSError``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class PendingSync:
    """Checkpoint folders written without fsync since the last durable point."""

    def __init__(self) -> None:
        self.folders: set[Path] = set()

    def add(self, folder: Path) -> None:
        self.folders.add(folder)

    def flush(self, named: Iterable[Path]) -> None:
        """fsync the files of every pending folder that is still ``named`` (the rest were pruned), then their parents."""
        files = [folder / name for folder in sorted(set(named) & self.folders) for name in CHECKPOINT_FILES]
        if len(files) > _SERIAL_FSYNCS:
            # concurrent fsyncs share the filesystem's journal commits: 2-4x faster for a run's worth of
            # checkpoints than one after another (measured on ext4); a failure still raises here
            with ThreadPoolExecutor(max_workers=_FSYNC_WORKERS, thread_name_prefix="grokplug-fsync") as pool:
                list(pool.map(_fsync_file, files))
        else:
            for file in files:
                _fsync_file(file)
        for parent in {folder.parent for folder in self.folders}:
            fsync_dir(parent)  # renames into place and deletions
        self.folders.clear()


def write_manifest(run_path: Path, name: str, manifest: dict[str, Any], *, durable: bool) -> None:
    """Replace the manifest atomically; ``durable``: with fsync, and keep the durable copy beside it."""
    write_json_atomic(run_path / name, manifest, indent_levels=2, sync=durable)
    if durable:  # a copy, not a hard link: an in-place edit of manifest.json must not reach it
        write_json_atomic(run_path / DURABLE_COPY, manifest, indent_levels=2)


def read_durable_copy(run_path: Path) -> dict[str, Any] | None:
    """The manifest as of the last durable point, or ``None`` if there is no readable copy."""
    try:
        manifest = json.loads((run_path / DURABLE_COPY).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def recover_from_durable_copy(run_path: Path) -> tuple[dict[str, Any], list[str]] | None:
    """The durable copy without the checkpoints whose weights are gone, and those steps; ``None`` without a copy."""
    manifest = read_durable_copy(run_path)
    if manifest is None:
        return None
    entries = manifest.get("checkpoints")
    gone: list[str] = []
    if isinstance(entries, dict):
        for step, entry in list(entries.items()):
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str) or os.path.isabs(path) or ".." in Path(path).parts \
                    or not (run_path / path).is_file():
                gone.append(step)
                entries.pop(step)
        if manifest.get("latest_step") is not None and str(manifest["latest_step"]) not in entries:
            manifest["latest_step"] = max((int(s) for s in entries), default=None)
    return manifest, gone
