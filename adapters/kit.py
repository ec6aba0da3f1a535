"""Adapter for the NeurIPS-2023 Machine Unlearning Challenge starting kit's function shape.

``unlearning(net, retain, forget, validation) -> net`` takes DataLoaders and returns the updated
network; variants (AlbinSou's ``unlearn_1(net, retain_loader, forget_loader)``) return ``None`` and
change ``net`` in place. Either way :meth:`KitAdapter.run` returns an ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from grokplug.errors import UsageError

from ._calling import positional_names, rejected_keywords
from ._isolate import ForeignMethod, Toolkit
from .optml import private_loader

__all__ = ["KitAdapter"]


class KitAdapter(ForeignMethod):
    """Wrap ``fn(net, retain, forget, validation)`` (or ``fn(net, retain, forget)``).

    :param defaults: hyperparameters, passed to ``fn`` as keyword arguments (checked against its
        signature here, so a typo fails at wrap time, not mid-run). Empty by default: kit functions
        usually hard-code their settings.
    :param copy_data: hand ``fn`` loaders over deep copies of the datasets (off by default).
    """

    shape = "starting-kit"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        description: str | None = None,
        cifar_defaults: Mapping[str, Any] | None = None,
        iterative: bool = True,
        strength_param: str | None = None,
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
        copy_data: bool = False,
    ) -> None:
        super().__init__(
            fn, name=name, description=description, defaults=defaults, cifar_defaults=cifar_defaults,
            iterative=iterative, strength_param=strength_param, toolkit=toolkit, cuda_shim=cuda_shim,
        )  # fmt: skip
        bad = rejected_keywords(fn, {**self.defaults, **self.cifar_defaults})
        if bad:
            raise UsageError(f"{self.name!r} does not take hyperparameter(s) {', '.join(bad)}")
        names = positional_names(fn)
        # Three positional slots (AlbinSou style) means no validation loader.
        self._with_validation = names is None or len(names) >= 4
        self.copy_data = copy_data

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        """Call ``fn(model, retain, forget[, validation], **hparams)``; returns the resulting module."""
        copy = private_loader if self.copy_data else (lambda loader: loader)
        val = data.val if getattr(data, "val", None) is not None else getattr(data, "test", None)
        loaders = [copy(data.retain), copy(data.forget)]
        if self._with_validation:
            loaders.append(copy(val))
        with self.foreign(model):
            return self._as_module(self.target(model, *loaders, **hparams), model)
