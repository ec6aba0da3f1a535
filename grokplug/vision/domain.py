"""The vision domain: what the unlearning orchestrator needs for classifiers (registered by ``grokplug.hooks.vision``).

* data: a seeded random (``forget_rate``) or class-wise (``forget_classes``) split of a preset run's
  training set, with the preset's held-out set as test (:func:`vision_run_data`);
* probe: top-1 accuracy on the forget and retain loaders, after every optimizer update;
* evaluation: the registered metric ``evaluate_vision`` (accuracies, both MIAs, drops);
* reference: the preset retrained from scratch on the retain set (:func:`grokplug.vision.retrain.retain_only_reference`);
* running: the method inside the core step monitor (PyTorch's global optimizer post-step hook).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from .._domain import AnalysisData, MonitorSettings, RunOutcome, UnlearningDomain
from .._monitor import Probe, StepMonitor
from .._resolve import Source, run_dir_of
from ..errors import UsageError
from ..plugins import get_plugin_manager
from .data import VisionData, check_disjoint, loaders_from_tensors, make_forget_split
from .monitor import accuracy_probe

__all__ = ["VisionDomain", "vision_run_data"]

_NO_RETAIN = "the forget set takes every training sample; lower --forget-rate or forget fewer classes"


def vision_run_data(
    source: Source,
    *,
    forget_rate: float | None = None,
    forget_classes: list[int] | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> VisionData:
    """Forget/retain/test loaders for a run made by a preset (test = the preset's held-out set)."""
    run = run_dir_of(source)
    name = run.config.get("preset")
    if not name:
        raise UsageError(f"run {run.path} was not made by a preset; build VisionData yourself and pass it as splits=")
    preset = get_plugin_manager().presets.get(str(name))
    data = preset.make_data(run.config, run.seed or 0)
    if forget_rate is None and not forget_classes:
        forget_rate = 0.15
    split = make_forget_split(
        data.train_y, rate=forget_rate, classes=forget_classes, eligible=data.forget_eligible, seed=seed
    )
    if len(split.retain) == 0:
        raise UsageError(f"the retain set is empty; {_NO_RETAIN}")
    test_x, test_y = data.val_x, data.val_y
    if split.kind == "class":  # as OPTML: test accuracy is measured on the remaining classes
        keep = ~torch.isin(test_y, torch.tensor(split.classes or ()))
        test_x, test_y = test_x[keep], test_y[keep]
    return loaders_from_tensors(
        data.train_x, data.train_y, split, num_classes=data.num_classes, test=(test_x, test_y),
        batch_size=batch_size, seed=seed,
    )


class VisionDomain(UnlearningDomain):
    """Classifiers on image-like tensors (the offline presets, CIFAR/SVHN with torchvision)."""

    name: ClassVar[str] = "vision"
    description: ClassVar[str] = "classifiers: forget/retain/test loaders, accuracy probe, accuracies and MIAs"
    options: ClassVar[frozenset[str]] = frozenset({"forget_rate", "forget_classes", "batch_size"})
    default_target: ClassVar[str | None] = "test"
    report_keys: ClassVar[tuple[str, ...]] = (
        "forget_acc", "retain_acc", "test_acc", "mia_svc_efficacy", "mia_loss_lr", "retain_drop", "test_drop",
    )
    damage_metrics: ClassVar[tuple[str, ...]] = (
        "forget_acc", "retain_acc", "test_acc", "retain_drop", "test_drop", "mia_svc_efficacy", "mia_loss_lr",
    )
    compare_columns: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("at_target", "retain_acc", "retain acc @target"), ("at_target", "retain_drop", "retain drop @target"),
        ("at_target", "test_drop", "test drop @target"), ("final", "forget_acc", "final forget"),
        ("final", "retain_acc", "final retain"), ("final", "test_acc", "final test"),
        ("final", "mia_svc_efficacy", "MIA-SVC efficacy"), ("final", "mia_loss_lr", "MIA loss-LR"),
    )
    has_test_set: ClassVar[bool] = True

    def run_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> VisionData:
        return vision_run_data(source, seed=seed, **options)

    def check_data(self, data: Any) -> None:
        """Refuse an empty forget set or a forget/retain overlap, also in splits the caller built."""
        if getattr(data, "split", None) is not None:
            check_disjoint(data.split.forget, data.split.retain)
        for part, why in (("forget", "there is nothing to unlearn"), ("retain", _NO_RETAIN)):
            try:
                empty = len(getattr(data, part).dataset) == 0
            except (AttributeError, TypeError):  # an iterable dataset: its size is unknown
                continue
            if empty:
                raise UsageError(f"the {part} set is empty; {why}")

    def probe(self, data: Any) -> Probe | None:
        return accuracy_probe(data.forget, data.retain)

    def analysis_data(self, source: Any, *, seed: int, options: Mapping[str, Any]) -> AnalysisData:
        from .analysis import vision_analysis_data

        return vision_analysis_data(source, seed=seed, **options)

    def evaluate(self, model: Any, data: Any, *, seed: int, start: Mapping[str, Any] | None,
                 reference: Mapping[str, Any] | None, options: Mapping[str, Any]) -> dict[str, Any]:
        evaluate_vision = get_plugin_manager().metrics.get("evaluate_vision")
        return dict(evaluate_vision(model, data, start=start, seed=seed))

    def reference(self, source: Any, data: Any, *, seed: int, target: Any,
                  options: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if target != "retrain":
            return None
        from .retrain import retain_only_reference

        return retain_only_reference(source, data, seed=seed, max_steps=options.get("max_steps"))

    def prepare_model(self, model: Any, accelerator: Any, options: Mapping[str, Any]) -> tuple[Any, Any]:
        from accelerate import Accelerator

        accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
        return accelerator.prepare(model), accelerator

    def run_method(self, method: Any, model: Any, data: Any, params: Mapping[str, Any], monitor: MonitorSettings,
                   options: Mapping[str, Any]) -> RunOutcome:
        watcher = StepMonitor(model, monitor.probe, target=monitor.target, eval_every=monitor.eval_every,
                              stop_at_target=monitor.stop_at_target, on_eval=monitor.on_eval)
        returned = None
        with watcher:
            if not (watcher.met_at_start and monitor.stop_at_target):
                returned = method.run(model, data, **params)
        final = returned if isinstance(returned, torch.nn.Module) else model
        return RunOutcome(model=final, steps=watcher.steps, steps_to_target=watcher.steps_to_target,
                          met_at_start=watcher.met_at_start, stopped_early=watcher.stopped_early, trail=watcher.trail)
