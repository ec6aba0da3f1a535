"""Forget/retain splits and the loaders a vision unlearning method receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from .._atomic import sha256_ints
from ..errors import UsageError


@dataclass(frozen=True)
class ForgetSplit:
    """Which training positions to forget and which to retain (positions index the training set).

    ``kind`` is ``"random"`` (a ``rate`` of the forget-eligible positions) or ``"class"`` (every
    eligible position of ``classes``). Built only through :func:`make_forget_split`, which refuses
    an empty forget set and any overlap.
    """

    kind: str
    forget: tuple[int, ...]
    retain: tuple[int, ...]
    seed: int
    rate: float | None = None
    classes: tuple[int, ...] | None = None

    @property
    def forget_sha256(self) -> str:
        return sha256_ints(self.forget)

    @property
    def retain_sha256(self) -> str:
        return sha256_ints(self.retain)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(forget_sha256=self.forget_sha256, retain_sha256=self.retain_sha256)
        out["n_forget"], out["n_retain"] = len(self.forget), len(self.retain)
        return out


def check_disjoint(forget: Sequence[int], retain: Sequence[int]) -> None:
    """Refuse an empty forget set, and any position that is both forgotten and retained."""
    if len(forget) == 0:
        raise UsageError("the forget set is empty; choose a positive forget rate or a class that is present")
    overlap = sorted(set(forget) & set(retain))
    if overlap:
        shown = ", ".join(map(str, overlap[:8])) + (" …" if len(overlap) > 8 else "")
        raise UsageError(f"forget and retain sets overlap in {len(overlap)} position(s): {shown}")


def make_forget_split(
    train_targets: Sequence[int] | torch.Tensor,
    *,
    rate: float | None = None,
    classes: Sequence[int] | None = None,
    eligible: Sequence[int] | None = None,
    seed: int = 0,
) -> ForgetSplit:
    """A seeded random-percentage split (``rate``) or a class-wise split (``classes``).

    Positions outside ``eligible`` are always retained. The same arguments always give the same
    split (a local generator; the global RNG is untouched).
    """
    targets = torch.as_tensor(train_targets).tolist()
    n = len(targets)
    pool = list(range(n)) if eligible is None else sorted(set(int(i) for i in eligible))
    if any(i < 0 or i >= n for i in pool):
        raise UsageError(f"forget-eligible positions must lie in [0, {n})")
    if (rate is None) == (classes is None):
        raise UsageError("give exactly one of a forget rate or forget classes")
    if rate is not None:
        if not 0.0 < float(rate) < 1.0:
            raise UsageError(f"forget rate must lie strictly between 0 and 1, got {rate}")
        k = int(round(float(rate) * len(pool)))
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
        forget = sorted(pool[i] for i in order[:k])
        kind, class_tuple = "random", None
    else:
        class_tuple = tuple(sorted(int(c) for c in classes or ()))
        missing = [c for c in class_tuple if c not in set(targets)]
        if missing:
            raise UsageError(f"forget class(es) {missing} do not occur in the training set")
        forget = [i for i in pool if targets[i] in set(class_tuple)]
        kind = "class"
    forget_set = set(forget)
    retain = [i for i in range(n) if i not in forget_set]
    check_disjoint(forget, retain)
    return ForgetSplit(kind, tuple(forget), tuple(retain), seed, None if rate is None else float(rate), class_tuple)


@dataclass
class VisionData:
    """The loaders handed to a vision method. Batches are ``(x, y)`` tuples.

    ``val``/``test`` are for monitoring and metrics only (no method trains on them). ``full_train``
    is forget + retain (SSD's importances need it). For class-wise forgetting ``test`` should hold
    only the remaining classes, as OPTML does.
    """

    forget: DataLoader
    retain: DataLoader
    num_classes: int
    val: DataLoader | None = None
    test: DataLoader | None = None
    full_train: DataLoader | None = None
    split: ForgetSplit | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def loaders_from_tensors(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    split: ForgetSplit,
    *,
    num_classes: int,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> VisionData:
    """Build :class:`VisionData` from in-memory tensors (the offline presets)."""
    forget_idx, retain_idx = torch.tensor(split.forget), torch.tensor(split.retain)

    def loader(x: torch.Tensor, y: torch.Tensor, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)

    return VisionData(
        forget=loader(train_x[forget_idx], train_y[forget_idx], True),
        retain=loader(train_x[retain_idx], train_y[retain_idx], True),
        num_classes=num_classes,
        val=loader(*val, False) if val is not None else None,
        test=loader(*test, False) if test is not None else None,
        full_train=loader(train_x, train_y, True),
        split=split,
    )
