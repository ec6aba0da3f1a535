"""A method's hyperparameters split into HF TrainingArguments and the trainer's own (what open-unlearning's
configs mix in one dict), and the TrainingArguments grokplug builds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["make_training_args", "split_hparams", "training_arg_names"]


# Always set on the TrainingArguments grokplug builds (the user may override all but the first).
_FORCED = {"remove_unused_columns": False}


_ARG_DEFAULTS = {"report_to": [], "save_strategy": "no", "disable_tqdm": True, "logging_strategy": "no"}


@lru_cache(maxsize=1)
def training_arg_names() -> frozenset[str]:
    """The field names of the installed ``transformers.TrainingArguments``."""
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments) if f.init)


def split_hparams(
    hparams: Mapping[str, Any], method_keys: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(method kwargs, TrainingArguments kwargs)``; a name that is neither is a :class:`UsageError`."""
    method_keys = set(method_keys)
    method = {k: v for k, v in hparams.items() if k in method_keys}
    training = {k: v for k, v in hparams.items() if k not in method_keys}
    unknown = sorted(set(training) - training_arg_names())
    if unknown:
        raise UsageError(
            f"unknown hyperparameter(s) {', '.join(unknown)}: neither method arguments nor TrainingArguments"
        )
    return method, training


def make_training_args(output_dir: str | Path, **kwargs: Any) -> Any:
    """``TrainingArguments`` with grokplug's defaults (no saving, no reporting, nested batches kept)."""
    from transformers import TrainingArguments

    if kwargs.get("remove_unused_columns"):
        raise UsageError(
            "unlearning batches are nested ({'forget','retain'}): remove_unused_columns must stay False"
        )
    return TrainingArguments(output_dir=str(output_dir), **{**_ARG_DEFAULTS, **kwargs, **_FORCED})
