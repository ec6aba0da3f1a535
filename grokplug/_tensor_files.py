"""Tensor files: snapshots of weights and optimizer state, and the safetensors files that hold them.

Weights are written and read as safetensors only; nothing here ever unpickles (a ``.pt``/``.bin``
pickle archive is recognised and refused).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, serialize_file
from safetensors.torch import load_file, save_file

from ._atomic import sha256_file
from .errors import CheckpointIntegrityError

try:  # safetensors >= 0.8: serialize straight from a tensor's memory
    from safetensors import TensorSpec as _TensorSpec
except ImportError:  # older: every write goes through save_file
    _TensorSpec = None  # type: ignore[assignment,misc]

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
        if isinstance(tensors, Snapshot) and _TensorSpec is not None and tensors.in_place():
            # safetensors' own serializer, given each tensor's memory directly: save_file would first re-check
            # every tensor and build a numpy view of it, Python work that a background save does holding the
            # GIL (the training thread waits for it). A Snapshot's tensors already are what those checks ask.
            specs = {name: _TensorSpec(dtype=_dtype_name(t.dtype), shape=t.shape, data_ptr=t.data_ptr(),
                                       data_len=t.numel() * t.element_size()) for name, t in tensors.items()}
            serialize_file(specs, str(path), metadata=meta)
        else:
            save_file(dict(tensors), str(path), metadata=meta)


@functools.cache
def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).split(".")[-1]  # the name save_file gives safetensors


class Snapshot(dict[str, torch.Tensor]):
    """Tensors that are private, contiguous CPU copies, as the ``snapshot_*`` functions make them.

    Nothing else holds their memory, so a background thread may write them while training goes on,
    and safetensors can serialize them straight from memory (see :func:`write_safetensors`).
    """

    def in_place(self) -> bool:
        """Whether every tensor still is a dense CPU block (the one check a raw-memory write cannot do without)."""
        return all(t.is_cpu and t.is_contiguous() for t in self.values())


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
