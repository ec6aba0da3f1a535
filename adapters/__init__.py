"""Adapters that run third-party unlearning methods unchanged from a grok-aware start.

Installed as ``grokplug.adapters``. Each adapter takes a method in its toolkit's own shape (an HF
``Trainer`` subclass, an OPTML per-epoch function, a NeurIPS-2023 ``unlearning(net, retain, forget,
validation)`` function, a class with ``.unlearn(...)``) and calls it as its authors wrote it.
"""

from __future__ import annotations

__all__: list[str] = []
