"""The vision retain-only reference: the preset retrained on the retain set, scored on the split (what a model
that never saw the forget set scores on it)."""

from __future__ import annotations

from typing import Any

import torch

from .._deprecation import deprecated_alias
from .._resolve import Source, run_dir_of
from .._train import preset_loss
from ..errors import UsageError
from ..plugins import get_plugin_manager
from .data import VisionData
from .monitor import loader_accuracy


def _tensors(loader: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def retain_only_reference(source: Source, data: VisionData, *, seed: int = 0, max_steps: int | None = None) -> dict[str, float]:
    """Train the run's preset from scratch on the retain set only (same recipe and budget) and evaluate it.

    Its ``forget_acc`` is the ``retrain`` unlearning target: the forget accuracy of a model for which
    the forget set is truly unseen data.
    """
    run = run_dir_of(source)
    name = run.config.get("preset")
    if not name:
        raise UsageError(f"run {run.path} was not made by a preset; pass retrain_metrics= from your own retrained model")
    preset = get_plugin_manager().presets.get(str(name))
    config = run.config
    model = preset.make_model(config, seed)
    x, y = _tensors(data.retain)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], betas=tuple(config.get("betas", (0.9, 0.999)))
    )
    model.train()
    for _ in range(int(max_steps or config["max_steps"])):  # full batch, as the presets train
        optimizer.zero_grad(set_to_none=True)
        preset_loss(config, model(x), y, data.num_classes).backward()
        optimizer.step()
    metrics = {"forget_acc": loader_accuracy(model, data.forget), "retain_acc": loader_accuracy(model, data.retain)}
    if data.test is not None:
        metrics["test_acc"] = loader_accuracy(model, data.test)
    return metrics


retrain_reference = deprecated_alias(retain_only_reference, "grokplug.vision.retrain.retrain_reference",
                                     "grokplug.vision.retrain.retain_only_reference")
