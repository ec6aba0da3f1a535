"""Adapter for whole-model, one-shot transforms (SSD-style synaptic dampening, Fisher noise, ...).

Shape: ``fn(model, data_or_loaders, **hparams) -> model | None``. These methods take no optimizer
steps, so ``iterative`` is ``False`` and grokplug sweeps ``strength_param`` (e.g. SSD's λ) instead
of counting steps to a target.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import torch

from grokplug.errors import UsageError

from ._calling import rejected_keywords
from ._isolate import ForeignMethod, Toolkit
from .optml import private_loader

__all__ = ["TransformAdapter", "TripleBatches"]


class TripleBatches:
    """A loader view yielding SSD's ``(x, _, y)`` 3-tuples from ``(x, y)`` batches (``_`` is empty)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.dataset = getattr(loader, "dataset", None)
        self.batch_size = getattr(loader, "batch_size", None)

    def __iter__(self) -> Iterator[tuple[Any, torch.Tensor, Any]]:
        for x, y in self.loader:
            yield x, torch.empty(0), y

    def __len__(self) -> int:
        return len(self.loader)


class TransformAdapter(ForeignMethod):
    """Wrap ``fn(model, payload, **hparams)``.

    :param pass_data: ``"data"`` hands ``fn`` the :class:`~grokplug.vision.VisionData`; ``"loaders"``
        an ``OrderedDict(forget, retain, full_train, val, test)`` of DataLoaders.
    :param batches: ``"pair"`` keeps ``(x, y)`` batches; ``"triple"`` yields SSD's ``(x, _, y)``.
    :param strength_param: the hyperparameter to sweep (must be in ``defaults``).
    :param iterative: ``False`` (one-shot) unless the transform does take optimizer steps.
    :param copy_data: hand ``fn`` loaders over deep copies of the datasets.
    """

    shape = "transform"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        strength_param: str | None = None,
        iterative: bool = False,
        pass_data: Literal["data", "loaders"] = "data",
        batches: Literal["pair", "triple"] = "pair",
        description: str | None = None,
        cifar_defaults: Mapping[str, Any] | None = None,
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
        copy_data: bool = False,
    ) -> None:
        if pass_data not in ("data", "loaders") or batches not in ("pair", "triple"):
            raise UsageError(
                f"pass_data must be 'data'/'loaders' and batches 'pair'/'triple', got {pass_data!r}/{batches!r}"
            )
        super().__init__(
            fn, name=name, description=description, defaults=defaults, cifar_defaults=cifar_defaults,
            iterative=iterative, strength_param=strength_param, toolkit=toolkit, cuda_shim=cuda_shim,
        )  # fmt: skip
        bad = rejected_keywords(fn, {**self.defaults, **self.cifar_defaults})
        if bad:
            raise UsageError(f"{self.name!r} does not take hyperparameter(s) {', '.join(bad)}")
        self.pass_data, self.batches, self.copy_data = pass_data, batches, copy_data

    def payload(self, data: Any) -> Any:
        """What ``fn`` receives as its second argument."""
        fields = ("forget", "retain", "full_train", "val", "test")

        def prepare(loader: Any) -> Any:
            if loader is None:
                return None
            loader = private_loader(loader) if self.copy_data else loader
            return TripleBatches(loader) if self.batches == "triple" else loader

        loaders = {f: prepare(getattr(data, f, None)) for f in fields}
        if self.pass_data == "loaders":
            return OrderedDict(loaders)
        if dataclasses.is_dataclass(data) and not isinstance(data, type):
            return dataclasses.replace(data, **{f: v for f, v in loaders.items() if hasattr(data, f)})
        return data

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        """Apply the transform; returns its module, or ``model`` when it worked in place."""
        payload = self.payload(data)
        with self.foreign(model):
            return self._as_module(self.target(model, payload, **hparams), model)
