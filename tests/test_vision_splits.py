"""Forget/retain splits: seeded, recorded by hash, and never empty or overlapping."""

from __future__ import annotations

import pytest
import torch

from grokplug.errors import UsageError
from grokplug.vision import check_disjoint, loaders_from_tensors, make_forget_split

TARGETS = torch.arange(200) % 10


def test_random_split_is_seeded_and_respects_eligibility():
    a = make_forget_split(TARGETS, rate=0.15, seed=3, eligible=range(100))
    b = make_forget_split(TARGETS, rate=0.15, seed=3, eligible=range(100))
    c = make_forget_split(TARGETS, rate=0.15, seed=4, eligible=range(100))
    assert a == b and a.forget_sha256 == b.forget_sha256 and a.forget != c.forget
    assert len(a.forget) == 15 and max(a.forget) < 100
    assert sorted(a.forget + a.retain) == list(range(200))
    assert a.to_dict()["n_forget"] == 15 and len(a.to_dict()["retain_sha256"]) == 64


def test_class_split_takes_every_sample_of_the_class():
    split = make_forget_split(TARGETS, classes=[2, 7])
    assert split.kind == "class" and len(split.forget) == 40
    assert set(TARGETS[list(split.forget)].tolist()) == {2, 7}


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"rate": 0.0}, "strictly between 0 and 1"),
        ({"rate": 1.0}, "strictly between 0 and 1"),
        ({"rate": 0.001}, "forget set is empty"),
        ({"classes": [11]}, "do not occur"),
        ({}, "exactly one of"),
        ({"rate": 0.1, "classes": [1]}, "exactly one of"),
        ({"rate": 0.1, "eligible": [500]}, "must lie in"),
    ],
)
def test_bad_splits_are_refused(kwargs, needle):
    with pytest.raises(UsageError, match=needle):
        make_forget_split(TARGETS, **kwargs)


def test_overlap_and_empty_forget_are_refused():
    with pytest.raises(UsageError, match="overlap in 2 position"):
        check_disjoint([1, 2, 3], [2, 3, 4])
    with pytest.raises(UsageError, match="forget set is empty"):
        check_disjoint([], [1, 2])


def test_loaders_hold_exactly_the_split():
    x = torch.arange(200).float().unsqueeze(1)
    split = make_forget_split(TARGETS, rate=0.1, seed=0)
    data = loaders_from_tensors(x, TARGETS, split, num_classes=10, test=(x[:20], TARGETS[:20]), batch_size=16)
    forget_ids = sorted(int(v) for xb, _ in data.forget for v in xb[:, 0])
    retain_ids = sorted(int(v) for xb, _ in data.retain for v in xb[:, 0])
    assert forget_ids == list(split.forget) and retain_ids == list(split.retain)
