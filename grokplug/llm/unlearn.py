"""``unlearn_llm``: :func:`grokplug.unlearn` with the LLM domain's options spelled out (kept for existing callers).

Everything runs through the one orchestrator (:mod:`grokplug._unlearn`); the LLM specifics (forget
split, LoRA, the retain model, TOFU metrics, the Trainer monitor) are in :mod:`grokplug.llm.domain`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._resolve import Source
from .._unlearn import domain_of, registered_method, unlearn
from .._unlearn_types import UnlearnResult
from ..errors import UsageError
from .run_data import LLMRunData, llm_run_data, retain_only_reference, retain_reference

__all__ = ["LLMRunData", "llm_run_data", "retain_only_reference", "retain_reference", "unlearn_llm"]


def unlearn_llm(
    method: str | Any,
    source: Source,
    *,
    start: str = "grok",
    forget_split: str = "forget10",
    lora: bool | Mapping[str, Any] = False,
    seed: int = 0,
    hparams: Mapping[str, Any] | None = None,
    profile: str = "offline",
    target: str | float | None = "retrain",
    eval_every: int = 1,
    stop_at_target: bool = True,
    fallback: str | None = None,
    retain_reference_eval: Mapping[str, Any] | str | None = "auto",
    forget_quality: bool = False,
    evaluate: bool = True,
    eval_kwargs: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    accelerator: Any = None,
    data: LLMRunData | None = None,
) -> UnlearnResult:
    """Run the LLM ``method`` from the ``start`` checkpoint of the tofu run ``source`` and measure it.

    :param lora: ``True`` or a dict of ``LoraConfig`` arguments: unlearn through a LoRA adapter (the
        start weights stay frozen; ``output_dir`` then receives the adapter, not the full model).
    :param target: forget-accuracy threshold counted by the monitor: a number, ``"frac:F"`` (F × the
        start's forget acc), ``"retrain"`` (the retain model's forget acc) or ``None``.
    :param retain_reference_eval: ``"auto"`` (the retain model is trained when the ``retrain`` target or
        ``forget_quality=True`` needs it, else reused from the run dir if there), an ``evaluate_tofu``
        result (or its JSON path), or ``None`` (no forget_quality).
    :param evaluate: run ``evaluate_tofu`` on the start and the result (slow part on CPU).
    """
    name, method_obj = registered_method(method)  # seed and hparams are checked by the orchestrator
    if domain_of(method_obj).name != "llm":
        raise UsageError(f"method {name!r} is not an LLM method (domain {getattr(method_obj, 'domain', '?')!r})")
    return unlearn(
        method_obj, splits=data, source=source, start=start, seed=seed, hparams=hparams, profile=profile,
        target=target, eval_every=eval_every, stop_at_target=stop_at_target, fallback=fallback,
        output_dir=output_dir, accelerator=accelerator, forget_split=forget_split, lora=lora,
        retain_reference_eval=retain_reference_eval, forget_quality=forget_quality, evaluate=evaluate,
        eval_kwargs=eval_kwargs,
    )
