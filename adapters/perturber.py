"""Adapter for SSD's ``ParameterPerturber``-style objects (if-loops/selective-synaptic-dampening ``src/ssd.py``).

The class is used unchanged, the way SSD's own ``ssd_tuning`` strategy drives it::

    perturber = ParameterPerturber(model, optimizer, device, parameters)
    model.eval()
    forget_importance = perturber.calc_importance(forget_loader)       # batches (x, _, y)
    full_importance = perturber.calc_importance(full_train_loader)
    perturber.modify_weight(full_importance, forget_importance)         # in place

``parameters`` holds ``lower_bound, exponent, magnitude_diff, min_layer, max_layer,
forget_threshold, dampening_constant (λ), selection_weighting (α)``; each is a hyperparameter here,
with ``ssd_tuning``'s values (λ = 1, α = 10) as defaults. The sweep knob is α: a weight is dampened
where its forget importance exceeds α × its training importance, by min(λ·o/f, 1), so α decides which
weights move and caps how much (factor < λ/α), while λ alone changes only the factor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from ._calling import device_of
from ._isolate import ForeignMethod, Toolkit
from .transform import TripleBatches

__all__ = ["SSD_PARAMETERS", "PerturberAdapter"]

#: ``ssd_tuning``'s ``parameters`` dict (forget_random_strategies.py) with the driver's λ = 1, α = 10.
SSD_PARAMETERS: Mapping[str, Any] = {
    "lower_bound": 1, "exponent": 1, "magnitude_diff": None, "min_layer": -1, "max_layer": -1,
    "forget_threshold": 1, "dampening_constant": 1.0, "selection_weighting": 10.0,
}  # fmt: skip


class _ChainedTriples:
    """SSD's ``full_train_dl`` when the data has no ``full_train`` loader: retain, then forget."""

    def __init__(self, *loaders: Any) -> None:
        self.loaders = [TripleBatches(loader) for loader in loaders]

    def __iter__(self) -> Iterator[Any]:
        for loader in self.loaders:
            yield from loader

    def __len__(self) -> int:  # calc_importance divides by len(dataloader)
        return sum(len(loader) for loader in self.loaders)


def _sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1)  # ssd_tuning's: only used for zero_grad, never stepped


class PerturberAdapter(ForeignMethod):
    """Wrap a ``ParameterPerturber(model, opt, device, parameters)`` class as a one-shot method.

    :param perturber_cls: the class (or a factory with the same signature), unchanged.
    :param parameters: the ``parameters`` dict's defaults (default :data:`SSD_PARAMETERS`); each key
        is a hyperparameter.
    :param strength_param: the key :func:`grokplug.sweep_strength` sweeps (default α,
        ``selection_weighting``).
    :param optimizer: builds the optimizer handed to the class (SGD lr 0.1, as ``ssd_tuning``).
    """

    shape = "SSD ParameterPerturber"

    def __init__(
        self,
        perturber_cls: Callable[..., Any],
        *,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        strength_param: str | None = "selection_weighting",
        optimizer: Callable[[Any], torch.optim.Optimizer] = _sgd,
        description: str | None = None,
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
    ) -> None:
        super().__init__(
            perturber_cls, name=name or "ssd-perturber", description=description,
            defaults=dict(SSD_PARAMETERS if parameters is None else parameters), iterative=False,
            strength_param=strength_param, toolkit=toolkit, cuda_shim=cuda_shim,
        )  # fmt: skip
        self.optimizer = optimizer

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        """Dampen ``model`` in place from ``data.forget`` and ``data.full_train`` (or retain + forget)."""
        parameters = {**self.defaults, **hparams}
        full = getattr(data, "full_train", None)
        full_train = TripleBatches(full) if full is not None else _ChainedTriples(data.retain, data.forget)
        with self.foreign(model):
            optimizer = self.optimizer(model.parameters())
            perturber = self.target(model, optimizer, str(device_of(model)), parameters)
            was_training = model.training
            model.eval()  # ssd_tuning evaluates importances in eval mode
            try:
                forget_importance = perturber.calc_importance(TripleBatches(data.forget))
                full_importance = perturber.calc_importance(full_train)
                perturber.modify_weight(full_importance, forget_importance)
            finally:
                model.train(was_training)
                optimizer.zero_grad(set_to_none=True)
        return model
