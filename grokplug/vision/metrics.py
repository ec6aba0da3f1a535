"""Vision unlearning metrics: accuracies and two membership-inference attacks, with named directions.

Conventions (every field is a fraction in [0, 1], never ×100):

* ``forget_acc``: top-1 accuracy on the forget set. This is the paper's **UA** (arXiv 2512.03437):
  *higher = worse forgetting*.
* ``ua_optml`` = 1 − ``forget_acc``: OPTML's UA (Unlearn-Sparse / SalUn: "subtract the forget accuracy
  from 100"): *higher = stronger forgetting*. Always say which UA you quote.
* ``retain_acc`` (OPTML's RA), ``test_acc`` (TA): higher = better utility.
* ``mia_svc_efficacy``: OPTML's MIA-Efficacy, ``SVC_MIA_forget_efficacy["confidence"]`` as a
  fraction: the share of forget samples an SVC attack calls *non-members*. *Higher = better
  forgetting* (1.0: nothing looks trained-on).
* ``mia_loss_lr``: the NeurIPS-2023 unlearning starting kit's ``simple_mia``: cross-validated accuracy
  of a logistic regression telling forget (members) from test (non-members) by per-sample CE loss.
  *About 0.5 is ideal*; well above 0.5 means the forget set is still recognisable.
* ``retain_drop`` / ``test_drop`` (only with ``start=``): start − now, so *positive = damage*.

Other toolkits differ (SSD / Bad Teacher report the fraction predicted *member*, lower = better), so
grokplug never emits a bare "MIA" or "UA".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..errors import DivergedError
from .data import VisionData

__all__ = [
    "accuracy", "evaluate_vision", "in_dataset_order", "mia_loss_auc", "mia_loss_lr", "mia_svc_efficacy",
    "per_sample_outputs",
]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def per_sample_outputs(model: torch.nn.Module, loader: DataLoader, limit: int | None = None) -> dict[str, np.ndarray]:
    """Per-sample ``confidence`` (softmax p of the true label), ``loss`` (CE), ``correct`` and ``label``.

    Eval mode, no grad, the model's mode restored; at most ``limit`` samples, in loader order.
    """
    was_training = model.training
    model.eval()
    device = _device(model)
    parts: dict[str, list[torch.Tensor]] = {"confidence": [], "loss": [], "correct": [], "label": []}
    seen = 0
    try:
        for x, y in loader:
            if limit is not None and seen >= limit:
                break
            logits = model(x.to(device)).float()
            if not torch.isfinite(logits).all():  # fail here, not deep inside scikit-learn
                raise DivergedError("the model outputs NaN or infinite logits; the unlearning run diverged")
            y = y.to(device)
            parts["confidence"].append(F.softmax(logits, dim=-1).gather(1, y[:, None]).squeeze(1))
            parts["loss"].append(F.cross_entropy(logits, y, reduction="none"))
            parts["correct"].append((logits.argmax(-1) == y).float())
            parts["label"].append(y)
            seen += len(y)
    finally:
        model.train(was_training)
    out = {k: torch.cat(v).cpu().numpy() if v else np.zeros(0) for k, v in parts.items()}
    return {k: v[:limit] for k, v in out.items()} if limit is not None else out


def in_dataset_order(loader: DataLoader) -> DataLoader:
    """The loader's dataset, unshuffled (same batch size and collate function).

    Metrics read this view so that they are deterministic and never advance the shuffling
    generator of the loader a method trains on; OPTML's ``Subset(retain, range(n))`` also means
    the *first* n samples of the dataset, not of a shuffled pass.
    """
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size or 256, shuffle=False, collate_fn=loader.collate_fn
    )


def accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy over ``loader`` as a fraction (eval mode, no grad; the train/eval mode is restored)."""
    correct = per_sample_outputs(model, in_dataset_order(loader))["correct"]
    return float(correct.mean()) if len(correct) else float("nan")


def mia_svc_efficacy(model: torch.nn.Module, retain: DataLoader, forget: DataLoader, test: DataLoader) -> float:
    """OPTML's MIA-Efficacy (``SVC_MIA_forget_efficacy["confidence"]``) as a fraction; higher = better forgetting.

    Shadow set: the first |test| retain samples (dataset order) labelled member (1) and the test
    samples labelled non-member (0); feature: softmax probability of the true label; attack:
    ``SVC(C=3, gamma="auto", kernel="rbf")``; result: the fraction of forget samples predicted 0.
    When retain is smaller than test (never on CIFAR, but on the offline presets) both shadow halves
    are cut to the first min(|retain|, |test|) samples so the attack is trained on balanced classes.
    """
    from sklearn.svm import SVC

    n_test = len(test.dataset)  # type: ignore[arg-type]
    n_shadow = min(len(retain.dataset), n_test)  # type: ignore[arg-type]
    members = per_sample_outputs(model, in_dataset_order(retain), limit=n_shadow)["confidence"]
    non_members = per_sample_outputs(model, in_dataset_order(test), limit=n_shadow)["confidence"]
    target = per_sample_outputs(model, in_dataset_order(forget))["confidence"]
    x_shadow = np.concatenate([members, non_members]).reshape(-1, 1)
    y_shadow = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(x_shadow, y_shadow)
    return float(1.0 - attack.predict(target.reshape(-1, 1)).mean())


def mia_loss_lr(model: torch.nn.Module, forget: DataLoader, test: DataLoader, seed: int = 0) -> float:
    """The starting kit's ``simple_mia``: loss-based logistic-regression attack accuracy (≈0.5 is ideal).

    Per-sample CE losses on forget (label 1) and test (label 0); the larger side is subsampled at
    random (``seed``) to the size of the smaller, as the kit does; the score is the mean accuracy of
    ``LogisticRegression`` over a 10-split ``StratifiedShuffleSplit`` (``random_state=seed``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    rng = np.random.default_rng(seed)
    forget_loss = per_sample_outputs(model, in_dataset_order(forget))["loss"]
    test_loss = per_sample_outputs(model, in_dataset_order(test))["loss"]
    n = min(len(forget_loss), len(test_loss))
    forget_loss = rng.permutation(forget_loss)[:n]
    test_loss = rng.permutation(test_loss)[:n]
    samples = np.concatenate([test_loss, forget_loss]).reshape(-1, 1)
    members = np.concatenate([np.zeros(n), np.ones(n)])
    splits = StratifiedShuffleSplit(n_splits=10, random_state=seed)
    return float(cross_val_score(LogisticRegression(), samples, members, cv=splits, scoring="accuracy").mean())


#: below this many examples per side, ``StratifiedShuffleSplit``'s test part cannot hold both classes
MIA_LR_MIN_PER_SIDE = 6


def _warn_once(message: str) -> None:
    """A GrokplugWarning; Python's "default" filter (the CLI's) shows one message once, not per evaluation."""
    import warnings

    from ..errors import GrokplugWarning

    warnings.warn(message, GrokplugWarning, stacklevel=3)


#: The name the brief for this module used; the score is an accuracy, not an AUC.
mia_loss_auc = mia_loss_lr


def evaluate_vision(
    model: torch.nn.Module, data: VisionData, *, start: Mapping[str, Any] | None = None, seed: int = 0
) -> dict[str, float]:
    """Every metric above for ``data`` (see the module docstring for directions).

    Test-based fields use ``data.test``, else ``data.val``; without either they are omitted. With
    ``start`` (an earlier result of this function) it adds ``retain_drop`` and ``test_drop``.
    """
    held_out = data.test if data.test is not None else data.val
    result: dict[str, float] = {"forget_acc": accuracy(model, data.forget), "retain_acc": accuracy(model, data.retain)}
    result["ua_optml"] = 1.0 - result["forget_acc"]
    if held_out is not None:
        result["test_acc"] = accuracy(model, held_out)
        result["mia_svc_efficacy"] = mia_svc_efficacy(model, data.retain, data.forget, held_out)
        n = min(len(data.forget.dataset), len(held_out.dataset))  # type: ignore[arg-type]
        if n >= MIA_LR_MIN_PER_SIDE:
            result["mia_loss_lr"] = mia_loss_lr(model, data.forget, held_out, seed=seed)
        else:  # its 10 stratified splits need both classes on both sides: left out, said once per run
            _warn_once(f"the loss-based MIA (mia_loss_lr) needs at least {MIA_LR_MIN_PER_SIDE} forget and "
                       f"{MIA_LR_MIN_PER_SIDE} held-out examples, this split has {n}; it is left out")
    if start is not None:
        result["retain_drop"] = float(start["retain_acc"]) - result["retain_acc"]
        if "test_acc" in result and "test_acc" in start:
            result["test_drop"] = float(start["test_acc"]) - result["test_acc"]
    return result
