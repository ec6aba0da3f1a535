"""LLM unlearning on TOFU-style data: generated/loaded TOFU data and OU-equivalent QA tokenisation.

Submodules load lazily (``datasets``/``transformers`` are heavy): ``grokplug.llm.data``, ``grokplug.llm.qa``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "generate_tofu": "data", "load_tofu": "data", "save_tofu": "data", "check_tofu_schema": "data",
    "TOFU_CONFIGS": "data",
    "QADataset": "qa", "IdkQADataset": "qa", "ForgetRetainDataset": "qa",
    "DataCollatorForSupervisedDataset": "qa", "QATemplate": "qa",
    "train_tokenizer": "model", "load_tokenizer": "model", "tiny_causal_lm": "model", "load_causal_lm": "model",
    "train_tofu": "finetune", "unlearn_llm": "unlearn", "retain_reference": "run_data", "retain_only_reference": "run_data",
    "LLMRunData": "run_data", "llm_run_data": "run_data", "LLMUnlearnData": "methods", "LLMDomain": "domain",
    "TOFU_TINY": "preset", "evaluate_tofu": "evaluation",
    "wrap_lora": "lora", "save_adapter": "lora", "load_adapter": "lora",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grokplug.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
