"""Vision unlearning: forget/retain splits, loaders, built-in methods, metrics and the step monitor."""

from __future__ import annotations

from .data import ForgetSplit, VisionData, check_disjoint, loaders_from_tensors, make_forget_split

__all__ = ["ForgetSplit", "VisionData", "check_disjoint", "loaders_from_tensors", "make_forget_split"]
