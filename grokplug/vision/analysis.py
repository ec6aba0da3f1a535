"""What θ_pre/θ_grok analysis needs of a vision run (``VisionDomain.analysis_data``).

The split is :func:`grokplug.run_data`'s (``vision_run_data``), i.e. the one ``grokplug.unlearn`` uses; the
loss is the preset's training loss (or ``ce``/``mse``); CKA compares the input of the classifier head
(or the output of a named ``layer``).
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import TensorDataset

from .._domain import AnalysisData
from .._resolve import Source, build_model, run_dir_of
from .._unlearn import run_data
from ..analysis import default_layer, preset_loss_fn, representations
from .metrics import accuracy

__all__ = ["vision_analysis_data"]


def _whole(loader: Any) -> Any:
    """An in-memory loader as one (x, y) batch: full-batch gradients and HVPs instead of ~30 small ones."""
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[0], dataset.tensors[1]
    return loader


def vision_analysis_data(source: Source, *, seed: int, forget_rate: float | None = 0.15, forget_classes: list[int] | None = None,
                         loss: str = "preset", layer: str | None = None) -> AnalysisData:
    """Forget/retain/train/test of a preset run, its loss and the CKA layer (see :class:`grokplug.AnalysisData`)."""
    data = run_data(source, seed=seed, domain="vision", forget_rate=forget_rate, forget_classes=forget_classes)
    config = run_dir_of(source).config
    loaders = {"forget": data.forget, "retain": data.retain, "test": data.test}
    if layer is None:
        layer_desc = f"{default_layer(build_model(source).eval(), next(iter(data.forget))[0][:2])} (input)"
    else:
        layer_desc = layer
    return AnalysisData(
        forget=_whole(data.forget), retain=_whole(data.retain), train=_whole(data.full_train),
        test=_whole(data.test) if data.test is not None else None,
        loss_fn=preset_loss_fn(config, data.num_classes, loss),
        score=lambda model, part: accuracy(model, loaders[part]),
        features=lambda model, inputs: representations(model, inputs, layer),
        layer=layer_desc, loss_name=config.get("loss", "ce") if loss == "preset" else loss,
        test_set="the preset's held-out set",
    )
