"""The training loop behind ``grokplug train``: a preset, AdamW, and a GrokTracker."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._detect import GrokReport
from ._retention import RetentionPolicy
from ._tracker import GrokTracker
from ._validate import check_positive_int, check_seed
from .errors import DivergedError
from .plugins import get_plugin_manager
from .presets._base import Preset, PresetData

#: online states after which a run with ``stop_after_settled`` may end early
_DONE_STATES = {"settled"}


def preset_loss(config: Mapping[str, Any], logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    if config.get("loss", "ce") == "mse":  # Omnigrok: MSE against one-hot targets
        return F.mse_loss(logits, F.one_hot(targets, num_classes).to(logits.dtype))
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def evaluate_preset(model: torch.nn.Module, data: PresetData, config: Mapping[str, Any]) -> dict[str, float]:
    """Full-batch accuracy and loss on the train and validation sets."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for split, x, y in (("train", data.train_x, data.train_y), ("val", data.val_x, data.val_y)):
        logits = model(x)
        out[f"{split}_acc"] = float((logits.argmax(-1) == y).float().mean())
        out[f"{split}_loss"] = float(preset_loss(config, logits, y, data.num_classes))
    model.train(was_training)
    return out


def _resolve_preset(preset: Preset | str) -> Preset:
    return preset if isinstance(preset, Preset) else get_plugin_manager().presets.get(preset)


def train_preset(
    preset: Preset | str,
    run_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    max_steps: int | None = None,
    control: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    retention: RetentionPolicy | None = None,
    async_save: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    stop_after_settled: int | None = None,
) -> GrokReport:
    """Train a preset in ``run_dir`` with tracking (resuming an unfinished run there), return its report.

    :param control: train the preset's no-grok control instead (e.g. ``"no-grok"``).
    :param stop_after_settled: end this many evals after the detector settles on θ_grok
        (``None``: use the preset's config, else run the full budget).
    """
    seed = check_seed(seed)
    if max_steps is not None:
        max_steps = check_positive_int(max_steps, "max_steps")
    preset = _resolve_preset(preset)
    if preset.train is not None:  # the preset brings its own loop (e.g. the HF Trainer for tofu-tiny)
        return preset.train(
            preset, run_dir, seed=seed, max_steps=max_steps, control=control, overrides=overrides, retention=retention,
            async_save=async_save, overwrite=overwrite, progress=progress, stop_after_settled=stop_after_settled,
        )
    config = preset.resolve_config(overrides, control)
    if max_steps is not None:
        config["max_steps"] = int(max_steps)
    if stop_after_settled is None:
        stop_after_settled = config.get("stop_after_settled")
    torch.manual_seed(seed)  # dropout or minibatch order, if a preset uses them
    data = preset.make_data(config, seed)
    model = preset.make_model(config, seed)
    betas = tuple(config.get("betas", (0.9, 0.999)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], betas=betas)
    eval_every, total = int(config["eval_every"]), int(config["max_steps"])
    tracker = GrokTracker(
        run_dir,
        config=config,
        seed=seed,
        splits=data,
        save_every=int(config.get("save_every", eval_every)),
        retention=retention,
        detector_params=preset.detector_params,
        async_save=async_save,
        overwrite=overwrite,
    )
    with _flushed_denormals(bool(config.get("flush_denormal"))), tracker:
        step = tracker.restore(model, optimizer)
        bar = tqdm(total=total, initial=step, desc=f"{preset.name}", unit="step", disable=None if progress else True, dynamic_ncols=True)  # None: off when not a terminal
        settled_evals = 0

        def log(at: int) -> None:
            nonlocal settled_evals
            metrics = evaluate_preset(model, data, config)
            tracker.log_eval(at, model=model, optimizer=optimizer, **metrics)
            settled_evals = settled_evals + 1 if tracker.state in _DONE_STATES else 0
            bar.set_postfix(phase=tracker.state, train=f"{metrics['train_acc']:.2f}", val=f"{metrics['val_acc']:.2f}")

        if step == 0:
            log(0)
        model.train()
        batch = config.get("batch_size")
        generator = torch.Generator().manual_seed(seed)
        while step < total:
            if batch:
                idx = torch.randint(len(data.train_y), (int(batch),), generator=generator)
                x, y = data.train_x[idx], data.train_y[idx]
            else:
                x, y = data.train_x, data.train_y
            optimizer.zero_grad(set_to_none=True)
            loss = preset_loss(config, model(x), y, data.num_classes)
            if not torch.isfinite(loss):
                raise DivergedError(f"training loss became {float(loss)} at step {step}; lower the learning rate")
            loss.backward()
            tracker.before_optimizer_step(model, step)
            optimizer.step()
            step += 1
            bar.update(1)
            if step % eval_every == 0 or step == total:
                log(step)
                if stop_after_settled is not None and settled_evals > int(stop_after_settled):
                    break
        bar.close()
        report = tracker.close()
    return report


@contextlib.contextmanager
def _flushed_denormals(on: bool) -> Iterator[None]:
    """Flush denormals to zero while the body runs (large weight decay drives weights into denormals,
    ~10x slower on CPU), and back off after: the setting is process-wide, and the caller's code is not ours."""
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)  # torch has no getter; off is its default
