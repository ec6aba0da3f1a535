"""What a training preset is: a task, a model and a recipe, plus a no-grok control."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch


@dataclass(frozen=True)
class PresetData:
    """Tensors for full-batch (or minibatch) training, and the bookkeeping later issues need.

    ``train_indices`` / ``val_indices`` index the preset's full dataset (so splits are reproducible
    and hashable); ``forget_eligible`` are *positions in the training set* (0..n_train-1) that a
    forget set may be drawn from.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    train_indices: list[int]
    val_indices: list[int]
    forget_eligible: list[int]
    num_classes: int
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    """A registered recipe that groks offline on 2 CPU cores.

    ``config`` is the full, JSON-serialisable recipe (data, model, optimiser, loss, schedule). Keys the
    training loop reads: ``lr``, ``weight_decay``, ``betas``, ``loss`` (``"ce"`` or ``"mse"``),
    ``max_steps``, ``eval_every``, ``save_every``, ``batch_size`` (``None`` = full batch).
    ``controls`` maps a control name to config overrides under which the run must *not* grok;
    ``control_label`` is the label the detector must give it. ``train``, when set, replaces the tensor
    loop of ``grokplug train``: ``train(preset, run_dir, **train_preset_kwargs) -> GrokReport`` (the LLM
    presets train with the HF Trainer this way). ``unlearn_domain`` names the registered domain whose
    data, probe and evaluation the preset's runs use (:func:`grokplug.run_data`, :func:`grokplug.unlearn`).
    """

    name: str
    description: str
    config: Mapping[str, Any]
    make_data: Callable[[Mapping[str, Any], int], PresetData]
    make_model: Callable[[Mapping[str, Any], int], torch.nn.Module]
    controls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    expected_label: str = "grokking"
    control_label: str = "memorization"
    detector_params: Mapping[str, Any] = field(default_factory=dict)
    train: Callable[..., Any] | None = None
    unlearn_domain: str = "vision"

    @property
    def domain(self) -> str:
        return "training"

    def resolve_config(
        self, overrides: Mapping[str, Any] | None = None, control: str | None = None
    ) -> dict[str, Any]:
        """The recipe with a control's overrides and then the caller's overrides applied."""
        config = dict(self.config)
        if control is not None:
            if control not in self.controls:
                from grokplug.errors import UsageError

                raise UsageError(
                    f"preset {self.name!r} has no control {control!r}; it has: {', '.join(self.controls) or 'none'}"
                )
            config.update(self.controls[control])
            config["control"] = control
        config.update(overrides or {})
        config["preset"] = self.name
        return config


T = TypeVar("T")


def seeded_build(seed: int, factory: Callable[[], T]) -> T:
    """Run ``factory`` with torch's global RNG seeded, without reading or advancing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def data_from_indices(
    x: torch.Tensor,
    y: torch.Tensor,
    train_indices: list[int],
    val_indices: list[int],
    *,
    num_classes: int,
    info: Mapping[str, Any],
) -> PresetData:
    """:class:`PresetData` for index lists into a full dataset; every training position may be forgotten."""
    tr, va = torch.tensor(train_indices), torch.tensor(val_indices)
    return PresetData(
        train_x=x[tr],
        train_y=y[tr],
        val_x=x[va],
        val_y=y[va],
        train_indices=train_indices,
        val_indices=val_indices,
        forget_eligible=list(range(len(train_indices))),
        num_classes=num_classes,
        info=info,
    )
