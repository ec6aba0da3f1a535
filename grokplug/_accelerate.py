"""Process-layout helpers taken from accelerate: which rank writes, and the model inside a wrapper."""

from __future__ import annotations

from typing import Any

__all__ = ["is_main_process", "unwrap"]


def is_main_process(accelerator: Any = None) -> bool:
    """Whether this process is the one that writes (rank 0); ``accelerator`` if given, else accelerate's ``PartialState``.

    ``PartialState`` reads the process group that ``accelerate launch`` / torchrun set up, and is a
    plain single process otherwise.
    """
    if accelerator is not None:
        return bool(accelerator.is_main_process)
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0  # a group set up without accelerate (a Trainer's own)
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def unwrap(model: Any) -> Any:
    """The module inside (Distributed)DataParallel / compiled / FSDP wrappers (accelerate's ``extract_model_from_parallel``)."""
    if not hasattr(model, "module") and not hasattr(model, "_orig_mod"):
        return model  # no wrapper to peel (the tracker asks at every save: accelerate's checks cost ~0.5 ms)
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_fp32_wrapper=True)
