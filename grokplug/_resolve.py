"""Serving the start: request a checkpoint through the hooks, load it safely, rebuild the model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._rundir import RunDir
from ._tensor_files import load_weights
from ._types import CheckpointRef, CheckpointRequest
from .errors import ArchitectureMismatchError, CheckpointError
from .plugins import get_plugin_manager

Source = str | os.PathLike[str] | CheckpointRef
_MAX_LISTED = 8


def request_checkpoint(source: Source, phase: str = "grok", *, fallback: str | None = None, **options: Any) -> CheckpointRef:
    """Resolve ``phase`` (``grok``, ``pre``, ``final``, ``best`` or a step) of ``source`` to a checkpoint.

    Goes through ``grokplug_resolve_checkpoint``: the first plugin that serves ``source`` answers; the
    built-in provider serves local run directories.
    """
    if isinstance(source, CheckpointRef):
        return source
    request = CheckpointRequest(source=str(source), phase=str(phase), fallback=fallback, options=options)
    return get_plugin_manager().resolve_checkpoint(request)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside (Distributed)DataParallel / compiled wrappers (accelerate's ``extract_model_from_parallel``)."""
    from ._accelerate import unwrap

    return unwrap(model)


def _is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _tied_aliases(state: Mapping[str, torch.Tensor]) -> dict[str, set[str]]:
    """Names that share storage with another name (tied weights) in a model's state dict."""
    groups: dict[int, set[str]] = {}
    for name, tensor in state.items():
        if tensor.numel():
            groups.setdefault(tensor.data_ptr(), set()).add(name)
    return {name: group - {name} for group in groups.values() if len(group) > 1 for name in group}


def _map_keys(target: torch.nn.Module, tensors: Mapping[str, torch.Tensor], peft: bool) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Match checkpoint names to the model's; returns the mapped tensors and the model keys allowed to stay."""
    model_keys = set(target.state_dict())
    if not peft:
        return dict(tensors), set()
    # A LoRA-wrapped layer keeps its original weight under `<layer>.base_layer.<param>`; the adapter's
    # own weights are not in a checkpoint of the plain model and keep their initialisation.
    mapped = {}
    for name, tensor in tensors.items():
        if name not in model_keys:
            head, _, leaf = name.rpartition(".")
            wrapped = f"{head}.base_layer.{leaf}"
            if wrapped in model_keys:
                name = wrapped
        mapped[name] = tensor
    optional = {k for k in model_keys if "lora_" in k or ".modules_to_save." in k or "lora_magnitude" in k}
    return mapped, optional


def _dtype_kind(dtype: torch.dtype) -> str:
    """float, complex, bool or int: loading across kinds (int64 weights into a float model) is refused;
    float16/bfloat16/float32 may meet (a half-precision model filled from a float32 run is deliberate)."""
    if dtype.is_floating_point:
        return "float"
    if dtype.is_complex:
        return "complex"
    return "bool" if dtype == torch.bool else "int"


def load_into(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], *, origin: str = "checkpoint") -> None:
    """Copy ``tensors`` into ``model`` after checking that names and shapes match exactly.

    Works on plain ``nn.Module``s, HF ``PreTrainedModel``s (tied weights may be stored once), peft
    models (the checkpoint fills the base model; adapter weights stay as initialised) and
    DDP-wrapped models.
    """
    target: Any = unwrap_model(model)
    peft = _is_peft(target)
    if peft:
        target = target.get_base_model()
    mapped, optional = _map_keys(target, tensors, peft)
    expected = target.state_dict()
    tied = _tied_aliases(expected)
    missing = sorted(
        k for k in expected if k not in mapped and k not in optional and not (tied.get(k, set()) & set(mapped))
    )
    unexpected = sorted(k for k in mapped if k not in expected)
    wrong_shape = sorted(
        f"{k}: checkpoint {tuple(mapped[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in mapped
        if k in expected and tuple(mapped[k].shape) != tuple(expected[k].shape)
    )
    wrong_dtype = sorted(
        f"{k}: checkpoint {mapped[k].dtype} vs model {expected[k].dtype}"
        for k in mapped
        if k in expected and _dtype_kind(mapped[k].dtype) != _dtype_kind(expected[k].dtype)
    )
    if missing or unexpected or wrong_shape or wrong_dtype:
        parts = []
        for title, items in (("missing from checkpoint", missing), ("not in model", unexpected),
                             ("shape mismatch", wrong_shape), ("dtype mismatch", wrong_dtype)):
            if items:
                shown = "; ".join(items[:_MAX_LISTED]) + (f"; … {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")
                parts.append(f"{title} ({len(items)}): {shown}")
        raise ArchitectureMismatchError(
            f"{origin} does not fit {type(target).__name__}: " + " | ".join(parts)
        )
    with torch.no_grad():
        target.load_state_dict(mapped, strict=False)


def load_checkpoint(
    model: torch.nn.Module, source: Source, phase: str = "grok", *, fallback: str | None = None
) -> CheckpointRef:
    """Fill ``model`` with the ``phase`` checkpoint of ``source`` (hash-verified); returns its reference.

    The source checkpoint is only read, never modified.
    """
    ref = request_checkpoint(source, phase, fallback=fallback)
    tensors = load_weights(ref.path, ref.sha256)
    load_into(model, tensors, origin=f"checkpoint {ref.path} ({ref.phase}, step {ref.step})")
    return ref


def run_dir_of(source: Source) -> RunDir:
    """The run directory behind a source (a path, or a reference to one of its checkpoints)."""
    if isinstance(source, CheckpointRef):
        if source.run_dir is None:
            raise CheckpointError(f"checkpoint {source.path} does not come from a run directory; build the model yourself")
        source = source.run_dir
    return RunDir(Path(source))


def build_model(source: Source, *, seed: int | None = None) -> torch.nn.Module:
    """Rebuild the (untrained) architecture of a run made by a preset, from its recorded config."""
    run = run_dir_of(source)
    config = run.config
    name = config.get("preset")
    if not name:
        raise CheckpointError(
            f"run {run.path} was not made by a preset, so grokplug cannot rebuild its model; build it yourself "
            "and fill it with grokplug.load_checkpoint(model, run_dir)"
        )
    preset = get_plugin_manager().presets.get(str(name))
    return preset.make_model(config, run.seed if seed is None else seed)
