"""The vision probe of the step monitor: top-1 accuracy on the forget and retain loaders.

The monitor itself (PyTorch's global optimizer post-step hook, target, trail) is domain-neutral and
lives in :mod:`grokplug._monitor`; ``resolve_target`` in :mod:`grokplug._targets` (both re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

from .._monitor import Probe, StopUnlearning
from .._monitor import StepMonitor as _CoreStepMonitor
from .._targets import resolve_target
from ..errors import DivergedError

__all__ = ["StepMonitor", "StopUnlearning", "accuracy_probe", "loader_accuracy", "resolve_target"]


@torch.no_grad()
def loader_accuracy(model: torch.nn.Module, loader: DataLoader, max_batches: int | None = None) -> float:
    """Top-1 accuracy over a loader; raises :class:`DivergedError` if the model outputs NaN/inf."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    tensors = _plain_tensors(loader) if max_batches is None else None
    try:
        if tensors is not None:
            # Fast path for in-memory data (the presets): slice the tensors in dataset order. It skips
            # per-sample collation (~80% of an eval), and never draws from the shuffling generator of
            # the loader the method trains on, so how often the monitor evaluates cannot change the run.
            x_all, y_all = tensors
            chunk = max(int(loader.batch_size or 1), 1024)
            for lo in range(0, len(y_all), chunk):
                logits = model(x_all[lo:lo + chunk].to(device))
                if not torch.isfinite(logits).all():
                    raise DivergedError("the model's outputs became NaN or infinite during unlearning; lower the learning rate")
                correct += int((logits.argmax(-1).cpu() == y_all[lo:lo + chunk]).sum())
                total += len(y_all[lo:lo + chunk])
            return correct / max(total, 1)
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            logits = model(x.to(device))
            if not torch.isfinite(logits).all():
                raise DivergedError("the model's outputs became NaN or infinite during unlearning; lower the learning rate")
            correct += int((logits.argmax(-1).cpu() == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    return correct / max(total, 1)


def _plain_tensors(loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(x, y)`` of a loader over a 2-tensor ``TensorDataset`` with the default collate, else ``None``."""
    from torch.utils.data import TensorDataset
    from torch.utils.data._utils.collate import default_collate

    dataset = getattr(loader, "dataset", None)
    if type(dataset) is not TensorDataset or len(dataset.tensors) != 2 or loader.collate_fn is not default_collate:
        return None
    return dataset.tensors[0], dataset.tensors[1]


class StepMonitor(_CoreStepMonitor):
    """The core :class:`grokplug._monitor.StepMonitor` with the vision probe: accuracy on two loaders."""

    def __init__(
        self,
        model: torch.nn.Module,
        forget: DataLoader,
        retain: DataLoader,
        *,
        target: float | None,
        eval_every: int = 1,
        stop_at_target: bool = True,
        on_eval: Callable[[int, dict[str, float]], bool | None] | None = None,
        max_eval_batches: int | None = None,
    ) -> None:
        self.forget, self.retain = forget, retain
        super().__init__(model, accuracy_probe(forget, retain, max_eval_batches), target=target, eval_every=eval_every,
                         stop_at_target=stop_at_target, on_eval=on_eval)


def accuracy_probe(forget: DataLoader, retain: DataLoader, max_batches: int | None = None) -> Probe:
    """The monitor's probe for classifiers: top-1 accuracy on the forget and retain loaders."""

    def probe(model: torch.nn.Module) -> dict[str, float]:
        return {"forget_acc": loader_accuracy(model, forget, max_batches),
                "retain_acc": loader_accuracy(model, retain, max_batches)}

    return probe
