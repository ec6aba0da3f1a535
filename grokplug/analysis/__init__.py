"""Why grokked starts unlearn differently: CKA, forget/retain gradient alignment and curvature.

Formulas and the confounds they carry are in each module's docstring and docs/results.md. Everything works on any
``nn.Module``; :func:`analyse_run` puts it together for θ_pre vs θ_grok of a preset run.
"""

from __future__ import annotations

from ._cka import cka_drift, default_layer, linear_cka, representations
from ._curvature import hessian_top_eigenvalue, hessian_trace, hvp
from ._gradients import grad_alignment, mean_gradient
from ._run import analyse_run, preset_loss_fn

__all__ = [
    "analyse_run",
    "cka_drift",
    "default_layer",
    "grad_alignment",
    "hessian_top_eigenvalue",
    "hessian_trace",
    "hvp",
    "linear_cka",
    "mean_gradient",
    "preset_loss_fn",
    "representations",
]
