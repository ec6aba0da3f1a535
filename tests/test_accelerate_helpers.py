"""grokplug._accelerate.unwrap: the model inside a wrapper, the model itself otherwise (fast path)."""

from __future__ import annotations

import torch
from torch import nn

from grokplug._accelerate import unwrap


def test_a_plain_model_is_its_own_inside():
    model = nn.Linear(2, 2)
    assert unwrap(model) is model


def test_data_parallel_and_compiled_wrappers_are_peeled():
    inner = nn.Linear(2, 2)
    assert unwrap(nn.DataParallel(inner)) is inner  # a wrapper with `.module`
    from accelerate.utils import extract_model_from_parallel

    compiled = torch.compile(nn.DataParallel(inner), backend="eager")  # `_orig_mod`, no `.module`: accelerate decides
    assert unwrap(compiled) is extract_model_from_parallel(compiled, keep_fp32_wrapper=True)
    assert unwrap(compiled)._orig_mod is inner


def test_a_model_with_a_submodule_named_module_is_not_mistaken_for_a_wrapper():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = nn.Linear(2, 2)

    holder = Holder()
    assert unwrap(holder) is holder  # accelerate's check decides, as before the fast path
