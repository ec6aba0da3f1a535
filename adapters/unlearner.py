"""Adapter for class-based unlearners with ``.unlearn(model, retain, forget, val) -> model``.

That is DeepUnlearn's ``BaseUnlearner`` (``munl.unlearning.common``), configured at construction
(``cls(cfg=DictConfig, device)``). Give either a ready instance, or a class / factory plus keyword
arguments: then a fresh unlearner is built for every run (no state leaks from a θ_pre run into a
θ_grok run) and grokplug's hyperparameters reach it as constructor keywords.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from grokplug.errors import UsageError

from ._calling import device_of, rejected_keywords, signature_of
from ._isolate import ForeignMethod, Toolkit
from .optml import private_loader

__all__ = ["UnlearnerAdapter"]


class UnlearnerAdapter(ForeignMethod):
    """Wrap an unlearner instance, or a class/factory building one.

    :param unlearner: an object with ``.unlearn(...)``, or a class / callable returning one.
    :param init_kwargs: fixed constructor keywords (e.g. ``cfg=...``) for a class/factory.
    :param defaults: tunable constructor keywords, exposed as hyperparameters (factory only).
    :param pass_device: give the factory ``device=<model's device>`` when it takes ``device`` and
        none was supplied (DeepUnlearn's constructors do).
    :param copy_data: hand ``.unlearn`` loaders over deep copies of the datasets.
    """

    shape = "unlearner"

    def __init__(
        self,
        unlearner: Any,
        *,
        name: str | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        description: str | None = None,
        cifar_defaults: Mapping[str, Any] | None = None,
        iterative: bool = True,
        strength_param: str | None = None,
        pass_device: bool = True,
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
        copy_data: bool = False,
    ) -> None:
        self.is_factory = inspect.isclass(unlearner) or not callable(getattr(unlearner, "unlearn", None))
        if not self.is_factory and (init_kwargs or defaults or cifar_defaults):
            raise UsageError(
                "an unlearner instance is already built: pass its class or a factory to set kwargs"
            )
        if self.is_factory and not callable(unlearner):
            raise UsageError(f"{unlearner!r} has no .unlearn method and cannot build an unlearner")
        label = name or getattr(unlearner, "__name__", None) or type(unlearner).__name__
        super().__init__(
            unlearner, name=label, description=description, defaults=defaults,
            cifar_defaults=cifar_defaults, iterative=iterative, strength_param=strength_param,
            toolkit=toolkit, cuda_shim=cuda_shim,
        )  # fmt: skip
        self.init_kwargs = dict(init_kwargs or {})
        if self.is_factory:
            bad = rejected_keywords(unlearner, {**self.init_kwargs, **self.defaults, **self.cifar_defaults})
            if bad:
                raise UsageError(f"{label!r} does not take constructor keyword(s) {', '.join(bad)}")
        sig = signature_of(unlearner) if self.is_factory else None
        self._device_slot = bool(pass_device and sig is not None and "device" in sig.parameters)
        self.copy_data = copy_data

    def build(self, model: Any, **hparams: Any) -> Any:
        """A fresh unlearner (factory) or the instance given."""
        if not self.is_factory:
            return self.target
        kwargs = {**self.init_kwargs, **hparams}
        if self._device_slot and "device" not in kwargs:
            kwargs["device"] = device_of(model)
        return self.target(**kwargs)

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        """``unlearner.unlearn(model, retain, forget, val)``; returns its module, else ``model``."""
        copy = private_loader if self.copy_data else (lambda loader: loader)
        val = data.val if getattr(data, "val", None) is not None else getattr(data, "test", None)
        with self.foreign(model):
            unlearner = self.build(model, **hparams)
            returned = unlearner.unlearn(model, copy(data.retain), copy(data.forget), copy(val))
            return self._as_module(returned, model)
