"""Adapter for OPTML-Group's Unlearn-Sparse / Unlearn-Saliency (SalUn) methods, run unchanged.

Two shapes (OPTML's Unlearn-Sparse / Unlearn-Saliency ``unlearn/`` package):

* **epoch** (inner) functions ``f(data_loaders, model, criterion, optimizer, epoch, args[, mask])``,
  the bodies OPTML decorates with ``@iterative_unlearn``. The adapter supplies OPTML's outer loop:
  ``SGD(unlearn_lr, momentum, weight_decay)`` + ``MultiStepLR(decreasing_lr, 0.1)``, one call and one
  ``scheduler.step()`` per epoch.
* **outer** functions ``f(data_loaders, model, criterion, args[, mask])``: already-decorated methods
  or one-shot ones (``fisher``, ``Wfisher``); called directly, they build their own optimizer.

Either way the model is changed in place (OPTML returns ``None`` or a metric), so :meth:`run` returns
the model, or the function's return value when that is a module.
"""

from __future__ import annotations

import argparse
import copy
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

from grokplug.errors import UsageError

from ._calling import positional_names
from ._isolate import ForeignMethod, Toolkit, load_toolkit

__all__ = ["OPTML_ARGS", "OPTML_DATASETS", "OptmlAdapter", "from_toolkit", "optml_loaders", "private_loader"]

#: Every field of SalUn's ``Classification/arg_parser.py`` with its default (Sparse's is a subset),
#: each a hyperparameter, except ``data`` and ``mask`` (see :data:`_FIXED`). ``dataset`` must stay
#: one of :data:`OPTML_DATASETS`; ``num_classes=None`` means "from the data".
OPTML_ARGS: Mapping[str, Any] = {
    "dataset": "cifar10", "input_size": 32, "data_dir": "./tiny-imagenet-200",
    "num_workers": 4, "num_classes": None, "arch": "resnet18", "imagenet_arch": False,
    "train_y_file": "./labels/train_ys.pth", "val_y_file": "./labels/val_ys.pth", "seed": 2,
    "train_seed": 1, "gpu": 0, "workers": 4, "resume": False, "checkpoint": None, "save_dir": None,
    "batch_size": 256, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 182, "warmup": 0,
    "print_freq": 50, "decreasing_lr": "91,136", "no_aug": False, "no_l1_epochs": 0, "prune": "omp",
    "pruning_times": 1, "rate": 0.95, "prune_type": "rewind_lt", "random_prune": False,
    "rewind_epoch": 0, "rewind_pth": None, "unlearn": "retrain", "unlearn_lr": 0.01,
    "unlearn_epochs": 10, "num_indexes_to_replace": None, "class_to_replace": -1,
    "indexes_to_replace": None, "alpha": 0.2, "path": None, "num_iter": None, "attack": "backdoor",
    "trigger_size": 4,
}  # fmt: skip

# Fields that are not hyperparameters: ``data`` (a data-dir path) would clash with run()'s
# ``data`` argument; ``mask`` is Sparse's pruned-model *path*, while the saliency mask travels
# positionally. Neither is read by the methods.
_FIXED: Mapping[str, Any] = {"data": "../data", "mask": None}

#: RL branches on these names; any other ``args.dataset`` makes it raise ``NameError``.
OPTML_DATASETS = ("cifar10", "svhn", "cifar100", "TinyImagenet")

Kind = Literal["auto", "epoch", "outer"]


class _TargetsDataset(Dataset):
    """``(x, y)`` tensors exposed like a torchvision dataset: ``.data`` and a numpy ``.targets`` that
    ``__getitem__`` reads every time, so OPTML's ``dataset.targets = ...`` relabelling takes effect."""

    def __init__(self, data: torch.Tensor, targets: Any) -> None:
        self.data = data
        self.targets = np.asarray(targets)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index], int(self.targets[index])


def _private_dataset(dataset: Any) -> Any:
    """A deep copy the method may mutate (``.targets``, ``.transform``, ``.train``) freely."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        x, y = dataset.tensors
        return _TargetsDataset(x.detach().clone(), y.detach().cpu().numpy().copy())
    return copy.deepcopy(dataset)


def private_loader(loader: Any) -> Any:
    """The same batching over a private copy of the dataset (the caller's loader is left alone)."""
    if loader is None or not isinstance(loader, DataLoader):
        return copy.deepcopy(loader)
    common: dict[str, Any] = dict(
        num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
    )  # fmt: skip
    if loader.num_workers > 0:
        common.update(
            persistent_workers=loader.persistent_workers, prefetch_factor=loader.prefetch_factor,
            multiprocessing_context=loader.multiprocessing_context,
        )  # fmt: skip
    dataset = _private_dataset(loader.dataset)
    if loader.batch_size is None:  # a custom batch_sampler: reuse it as is
        return DataLoader(dataset, batch_sampler=loader.batch_sampler, **common)
    sampler = loader.sampler
    shuffle = isinstance(sampler, RandomSampler)
    custom = None if shuffle or isinstance(sampler, SequentialSampler) else sampler
    # A copied generator shuffles in the caller's order without advancing the caller's RNG.
    generator = copy.deepcopy(getattr(sampler, "generator", None) or loader.generator) if shuffle else None
    return DataLoader(
        dataset, batch_size=loader.batch_size, shuffle=shuffle, sampler=custom,
        drop_last=loader.drop_last, generator=generator, **common,
    )  # fmt: skip


def optml_loaders(data: Any, *, private: bool = True) -> OrderedDict[str, Any]:
    """OPTML's ``OrderedDict(retain, forget, val, test)``, over deep copies of ``data``'s datasets
    unless ``private=False``. A missing ``val`` falls back to ``test`` and vice versa (OPTML only
    evaluates on them)."""
    val, test = getattr(data, "val", None), getattr(data, "test", None)
    wrap = private_loader if private else (lambda loader: loader)
    return OrderedDict(
        retain=wrap(data.retain),
        forget=wrap(data.forget),
        val=wrap(val if val is not None else test),
        test=wrap(test if test is not None else val),
    )


def _milestones(decreasing_lr: Any) -> list[int]:
    if isinstance(decreasing_lr, str):
        return [int(v) for v in decreasing_lr.split(",") if v.strip()]
    return [int(v) for v in decreasing_lr]


def _detect_kind(fn: Callable[..., Any]) -> Literal["epoch", "outer"]:
    names = positional_names(fn)
    if names is None:
        return "outer"
    return "epoch" if {"optimizer", "epoch"} <= set(names) or len(names) >= 6 else "outer"


class OptmlAdapter(ForeignMethod):
    """Wrap an OPTML per-epoch or outer method as a grokplug :class:`UnlearningMethod`.

    :param fn: the method, unchanged (e.g. ``unlearn.get_unlearn_method("RL")`` or the undecorated body).
    :param kind: ``"epoch"``, ``"outer"``, or ``"auto"`` (epoch if it takes ``optimizer``/``epoch``).
    :param mask: SalUn saliency mask ``{param_name: 0/1 tensor}``, passed positionally (also an hparam),
        or ``mask(model, data) -> dict`` to compute it at the start of each run (from the loaded
        start and the run's forget set, e.g. ``grokplug.vision.saliency_mask``).
    :param args: extra or changed ``args`` fields (they become hyperparameters with these defaults).
    :param cuda_shim: run OPTML's hard-coded ``.cuda()`` on the model's device when CUDA is absent.
    :param copy_data: deep-copy datasets so ``.targets``/transform mutation never reaches the caller.
    """

    shape = "OPTML"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        kind: Kind = "auto",
        name: str | None = None,
        mask: Mapping[str, torch.Tensor] | Callable[[Any, Any], Mapping[str, torch.Tensor]] | None = None,
        args: Mapping[str, Any] | None = None,
        description: str | None = None,
        cifar_defaults: Mapping[str, Any] | None = None,
        strength_param: str | None = None,
        toolkit: Toolkit | None = None,
        cuda_shim: bool = False,
        copy_data: bool = True,
    ) -> None:
        if kind not in ("auto", "epoch", "outer"):
            raise UsageError(f"kind must be 'auto', 'epoch' or 'outer', got {kind!r}")
        self.kind: Literal["epoch", "outer"] = _detect_kind(fn) if kind == "auto" else kind
        label = name or getattr(fn, "__name__", None) or "optml"
        defaults = {**OPTML_ARGS, "unlearn": label, **dict(args or {}), "mask": None}
        super().__init__(
            fn, name=label, description=description, defaults=defaults, cifar_defaults=cifar_defaults,
            iterative=True, strength_param=strength_param, toolkit=toolkit, cuda_shim=cuda_shim,
        )  # fmt: skip
        self.mask = mask if mask is None or callable(mask) else dict(mask)
        self.copy_data = copy_data

    def build_args(self, data: Any, **hparams: Any) -> argparse.Namespace:
        """The ``argparse.Namespace`` OPTML's code reads: its defaults, then ``hparams``, checked."""
        fields = {**self.defaults, **hparams}
        fields.pop("mask", None)
        if fields.get("num_classes") is None:
            fields["num_classes"] = int(data.num_classes)
        if fields["dataset"] not in OPTML_DATASETS:
            raise UsageError(
                f"OPTML args.dataset must be one of {', '.join(OPTML_DATASETS)} (RL branches on it), "
                f"got {fields['dataset']!r}"
            )
        if fields.get("imagenet_arch"):
            raise UsageError(
                "imagenet_arch=True expects dict batches; grokplug's loaders yield (x, y) tuples"
            )
        if fields.get("rewind_epoch"):
            raise UsageError("rewind_epoch must be 0: grokplug loads the start checkpoint itself")
        return argparse.Namespace(**fields, **_FIXED)

    def _checked_mask(self, model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mask on each parameter's device; every trainable parameter must be covered
        (SalUn indexes ``mask[name]`` for each parameter with a gradient)."""
        params = dict(model.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in mask]
        extra = [n for n in mask if n not in params]
        if missing or extra:
            raise UsageError(
                f"saliency mask does not match the model: missing {missing[:4]}, unknown {extra[:4]}"
            )
        return {n: torch.as_tensor(t).to(params[n].device) for n, t in mask.items()}

    def _check_mask_slot(self) -> None:
        names = positional_names(self.target)
        needed = 7 if self.kind == "epoch" else 5
        if names is not None and len(names) < needed:
            raise UsageError(f"{self.name!r} takes no mask argument, but a saliency mask was given")

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:
        """Run the method on ``data`` (a :class:`~grokplug.vision.VisionData`); returns the model."""
        mask = hparams.pop("mask", None)
        mask = self.mask if mask is None else mask
        if callable(mask):  # computed from this run's start and forget set: mask(model, data)
            mask = mask(model, data)
        args = self.build_args(data, **hparams)
        loaders = optml_loaders(data, private=self.copy_data)
        criterion = nn.CrossEntropyLoss()
        extra: tuple[Any, ...] = ()
        if mask is not None:
            self._check_mask_slot()
            extra = (self._checked_mask(model, mask),)
        with self.foreign(model):
            if self.kind == "outer":
                return self._as_module(self.target(loaders, model, criterion, args, *extra), model)
            # OPTML's _iterative_unlearn_impl, minus rewinding / imagenet warmup (refused above).
            optimizer = torch.optim.SGD(
                model.parameters(), args.unlearn_lr, momentum=args.momentum, weight_decay=args.weight_decay
            )
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=_milestones(args.decreasing_lr), gamma=0.1
            )
            returned = None
            for epoch in range(args.unlearn_epochs):
                returned = self.target(loaders, model, criterion, optimizer, epoch, args, *extra)
                scheduler.step()
            return self._as_module(returned, model)


def from_toolkit(
    root: str | os.PathLike[str] | Toolkit,
    method_name: str,
    *,
    prepare: Callable[[Toolkit], Any] | None = None,
    **adapter_kwargs: Any,
) -> OptmlAdapter:
    """Import an OPTML checkout in isolation and wrap ``unlearn.get_unlearn_method(method_name)``.

    ``root`` is the folder holding ``unlearn/`` (the repo root for Unlearn-Sparse, ``Classification/``
    for SalUn), or a :class:`Toolkit` you already loaded (and perhaps patched) with
    :func:`load_toolkit`, which is then used as it is, not reloaded. ``prepare(toolkit)`` runs inside
    the isolation before ``unlearn`` is imported, to patch a broken checkout in memory. The returned
    adapter is an *outer* method (OPTML's own loop and optimizer).
    """
    if isinstance(root, Toolkit):
        if prepare is not None:
            raise UsageError("prepare= applies while a checkout is loaded; patch an already-loaded Toolkit yourself")
        toolkit = root
    else:
        toolkit = load_toolkit(root, "unlearn", prepare=prepare)
    with toolkit.active():
        try:
            fn = toolkit["unlearn"].get_unlearn_method(method_name)
        except NotImplementedError as exc:  # raised by OPTML's if/elif registry for unknown names
            raise UsageError(f"OPTML toolkit at {str(toolkit.root)!r}: {exc}") from exc
    adapter_kwargs.setdefault("name", method_name)
    adapter_kwargs.setdefault("kind", "outer")
    return OptmlAdapter(fn, toolkit=toolkit, **adapter_kwargs)
