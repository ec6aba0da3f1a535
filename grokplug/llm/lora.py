"""LoRA adapters on top of a grok-aware start (θ_pre or θ_grok) with peft.

Unlearning through an adapter leaves the start checkpoint untouched: only the adapter trains, is saved
(peft's ``save_pretrained``, safetensors) and can be reloaded onto a fresh copy of the same start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError

__all__ = ["DEFAULT_LORA", "lora_config", "load_adapter", "save_adapter", "wrap_lora"]

#: r / alpha / dropout used when ``lora=True``; a dict passed as ``lora=`` overrides any of these
DEFAULT_LORA: Mapping[str, Any] = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear"}


def lora_config(options: bool | Mapping[str, Any] = True) -> Any:
    """A causal-LM ``LoraConfig`` from ``True`` (the defaults) or a dict of ``LoraConfig`` arguments.

    ``target_modules="all-linear"`` adapts every linear layer except the output head, so the same
    default works for the tiny Llama and for any ``AutoModelForCausalLM``.
    """
    from peft import LoraConfig

    given = {} if options is True else dict(options or {})
    try:
        return LoraConfig(task_type="CAUSAL_LM", **{**DEFAULT_LORA, **given})
    except TypeError as exc:
        raise UsageError(f"bad LoRA option: {exc}") from None


def wrap_lora(model: torch.nn.Module, options: bool | Mapping[str, Any] = True) -> Any:
    """``get_peft_model(model, lora_config(options))``: base weights frozen, adapters trainable."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(options))


def save_adapter(peft_model: Any, path: str | os.PathLike[str]) -> Path:
    """Save only the adapter (``adapter_model.safetensors`` + ``adapter_config.json``), atomically."""
    from .._atomic import atomic_dir

    path = Path(path)
    with atomic_dir(path, what="save the LoRA adapter to") as tmp:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
        if not (tmp / "adapter_model.safetensors").exists():
            raise UsageError(f"peft wrote no adapter_model.safetensors into {path}")
    return path


def load_adapter(base_model: torch.nn.Module, path: str | os.PathLike[str], *, is_trainable: bool = False) -> Any:
    """Put a saved adapter onto ``base_model`` (a fresh copy of the start it was trained on).

    ``is_trainable=True`` keeps the adapter trainable (to continue unlearning); otherwise it is
    loaded for inference.
    """
    from peft import PeftModel

    path = Path(path)
    if not (path / "adapter_config.json").exists():
        raise UsageError(f"{path} holds no peft adapter (adapter_config.json missing)")
    if any(path.glob("*.bin")) and not (path / "adapter_model.safetensors").exists():
        raise UsageError(f"{path} holds a pickled adapter; grokplug loads safetensors only")
    return PeftModel.from_pretrained(base_model, str(path), is_trainable=is_trainable)


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
