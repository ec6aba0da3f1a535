"""The TOFU metrics shipped as local `evaluate` modules (loaded by path, never from the hub), their source
hashes, and the evaluation cache check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError

__all__ = ["METRICS_DIR", "METRIC_NAMES", "library_versions", "load_metric", "metric_versions", "read_cached_evaluation"]


METRICS_DIR = Path(__file__).parent / "metrics"


METRIC_NAMES = ("tofu_probability", "tofu_rouge", "truth_ratio", "forget_quality", "model_utility", "tofu_mia",
                "extraction_strength", "exact_memorization")


_LOADED: dict[tuple[str, str], Any] = {}


def load_metric(name: str, config_name: str = "default") -> Any:
    """One of the shipped ``evaluate`` modules, by local path (cached per process; never the hub)."""
    if name not in METRIC_NAMES:
        raise UsageError(f"unknown TOFU metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    key = (name, config_name)
    if key not in _LOADED:
        import evaluate

        _LOADED[key] = evaluate.load(str(METRICS_DIR / name), config_name, keep_in_memory=True)
    return _LOADED[key]


def metric_versions() -> dict[str, str]:
    """sha256 (first 16 hex) of each metric module's source: a definition change invalidates caches."""
    return {n: hashlib.sha256((METRICS_DIR / n / f"{n}.py").read_bytes()).hexdigest()[:16] for n in METRIC_NAMES}


def library_versions() -> dict[str, str]:
    import transformers

    from .._version import __version__

    return {"grokplug": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def read_cached_evaluation(path: Path | None, provenance: dict[str, Any]) -> dict[str, Any] | None:
    """The cached result when every hash and parameter in ``provenance`` matches; otherwise None."""
    if path is None or not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):  # unreadable or truncated: recompute and overwrite
        return None
    stored = {k: v for k, v in (cached.get("provenance") or {}).items() if k in provenance}
    if stored != provenance:
        return None
    cached["provenance"]["cache"] = "hit"
    return cached
