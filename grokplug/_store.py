"""Checkpoint files: safetensors only, written atomically, verified by sha256 on load.

Nothing here ever unpickles: a ``.pt``/``.bin`` pickle archive is recognised and refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, serialize_file
from safetensors.torch import load_file, save_file

from ._atomic import create_temp, describe_os_error, make_private_dir, outer_indented_json, sha256_file
from ._durability import write_file as write_checkpoint_file
from ._rundir import CHECKPOINTS, RunDir, checkpoint_dirname
from .errors import CheckpointIntegrityError

try:  # safetensors >= 0.8: serialize straight from a tensor's memory
    from safetensors import TensorSpec as _TensorSpec
except ImportError:  # older: every write goes through save_file
    _TensorSpec = None  # type: ignore[assignment,misc]

WEIGHTS = "model.safetensors"
META = "meta.json"
OPTIMIZER = "optimizer.safetensors"

_OS_ERROR = re.compile(r"\(os error (\d+)\)")


@contextlib.contextmanager
def _io_errors_as_oserror(path: str | os.PathLike[str]) -> Iterator[None]:
    """safetensors reports I/O failures (disk full, read-only, size limit) as ``SafetensorError("... (os error
    28)")``; raised as ``OSError``, callers that turn one into a one-line error also catch these."""
    try:
        yield
    except SafetensorError as exc:
        match = _OS_ERROR.search(str(exc))
        if match is None:
            raise
        code = int(match.group(1))
        raise OSError(code, os.strerror(code), str(path)) from exc


def write_safetensors(
    tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """``save_file``, with its I/O failures raised as ``OSError``; a :class:`Snapshot` is written from memory."""
    meta = dict(metadata) if metadata is not None else None
    with _io_errors_as_oserror(path):
        if isinstance(tensors, Snapshot) and _TensorSpec is not None:
            # safetensors' own serializer, given each tensor's memory directly: save_file would first re-check
            # every tensor and build a numpy view of it, Python work that a background save does holding the
            # GIL (the training thread waits for it). A Snapshot's tensors already are what those checks ask.
            specs = {name: _TensorSpec(dtype=_dtype_name(t.dtype), shape=t.shape, data_ptr=t.data_ptr(),
                                       data_len=t.numel() * t.element_size()) for name, t in tensors.items()}
            serialize_file(specs, str(path), metadata=meta)
        else:
            save_file(dict(tensors), str(path), metadata=meta)


def _dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).split(".")[-1]  # the name save_file gives safetensors
    return name


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def _write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Write a safetensors file; returns its sha256 and size.

    Written by safetensors' own file writer, which releases the GIL (``save`` to bytes holds it, and a
    background save holding the GIL stalls the training thread), then hashed from the page cache.
    """
    write_safetensors(tensors, path, metadata)
    return sha256_file(path), os.stat(path).st_size


class Snapshot(dict[str, torch.Tensor]):
    """Tensors that are private, contiguous CPU copies, as the ``snapshot_*`` functions make them.

    Nothing else holds their memory, so a background thread may write them while training goes on,
    and safetensors can serialize them straight from memory (see :func:`write_safetensors`).
    """


def snapshot_state_dict(model: torch.nn.Module) -> Snapshot:
    """A detached CPU copy of the weights (safe to write from another thread while training goes on).

    Copies also break storage sharing between tied weights, which safetensors refuses to save.
    """
    return Snapshot((k, v.detach().to("cpu", copy=True).contiguous()) for k, v in model.state_dict().items())


OptimizerSnapshot = tuple[Snapshot, dict[str, Any]]


def snapshot_optimizer(optimizer: torch.optim.Optimizer, with_rng: bool = True) -> OptimizerSnapshot:
    """A detached copy of an optimizer's state (and the torch RNG state), flattened for safetensors."""
    tensors, structure = _flatten_optimizer(optimizer.state_dict())
    if with_rng:
        tensors["rng.torch"] = torch.get_rng_state().clone()
    return tensors, structure


def _flatten_optimizer(state: Mapping[str, Any]) -> OptimizerSnapshot:
    tensors = Snapshot()
    scalars: dict[str, Any] = {}
    for idx, entries in state.get("state", {}).items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state.get("param_groups", []), "scalars": scalars}


def unflatten_optimizer(tensors: Mapping[str, torch.Tensor], structure: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in structure.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": structure.get("param_groups", [])}


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


def _sniff_format(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    # safetensors: an 8-byte little-endian header length, then the JSON header. A length of 128 + 256k
    # starts with byte 0x80 like a pickle, so the layout is recognised first.
    if len(head) > 8 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size:
        return ""
    if head[:2] == b"PK":
        return "a torch.save zip archive (pickle inside)"
    if head[:1] == b"\x80":
        return "a pickle file"
    return ""


def load_weights(path: str | os.PathLike[str], expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load a safetensors file, verifying its hash when one is expected. Never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointIntegrityError(f"weights file {path} is missing")
    sniffed = _sniff_format(path)
    if sniffed or path.suffix in {".pt", ".pth", ".bin", ".ckpt", ".pkl"}:
        raise CheckpointIntegrityError(
            f"refusing to load {path}: it is {sniffed or 'not a .safetensors file'}; grokplug never loads weights "
            "through pickle (convert it once with safetensors.torch.save_file in a trusted environment)"
        )
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointIntegrityError(
                f"{path} does not match its manifest (sha256 {actual[:12]}… ≠ recorded {expected_sha256[:12]}…): "
                "the file was modified or truncated after it was saved"
            )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointIntegrityError(f"{path} is not a readable safetensors file ({exc}); it may be truncated") from exc


def load_optimizer(run: RunDir, step: int) -> tuple[dict[str, Any], torch.Tensor | None] | None:
    """The optimizer state and RNG state saved with a checkpoint, or ``None`` if not kept."""
    entry = run.checkpoint_entry(step)
    if "optimizer" not in entry:
        return None
    tensors = load_weights(run.resolve_inside(entry["optimizer"]), entry.get("optimizer_sha256"))
    structure = run.checkpoint_meta(step).get("optimizer", {})
    rng = tensors.pop("rng.torch", None)
    return unflatten_optimizer(tensors, structure), rng
