"""Built-in grokking accelerator: ⊥Grad (Prieto et al. 2025, "Grokking at the edge of numerical stability"), off by default.

Per parameter tensor θ with gradient g: ``g⊥ = g − (⟨θ, g⟩ / ‖θ‖²)·θ``, then rescaled to ``‖g‖``.
Removing the component along the weights stops the "naive loss minimisation" that only scales the
logits up (the road to Softmax Collapse), so the optimizer spends its steps on directions that change
the function. It is registered only when enabled: ``GROKPLUG_ORTHOGRAD=1``, the ``--orthograd`` flag of ``grokplug train``,
or :func:`enable`. Like Grokfast it is something to measure (``make bench``, section 6), not a promise:
its published gains are for runs *without* weight decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import hookimpl

_EPS = 1e-30  # as the reference implementation: a zero weight tensor leaves its gradient unchanged


@dataclass
class OrthoGrad:
    """The projection's settings (stateless: nothing to checkpoint)."""

    rescale: bool = True

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        for param in model.parameters():
            grad = param.grad
            if grad is None or grad.is_sparse:  # frozen / unused parameters; sparse grads are left alone
                continue
            w, g = param.detach().reshape(-1), grad.reshape(-1)
            w_sq = torch.dot(w, w)
            proj = torch.dot(w, g) / (w_sq + _EPS)
            norm = torch.linalg.vector_norm(g) if self.rescale else None
            g.sub_(w * proj)  # in place: `reshape` of a contiguous grad is a view
            if norm is not None:
                g.mul_(norm / (torch.linalg.vector_norm(g) + _EPS))
            if not grad.is_contiguous():  # reshape copied: write the result back
                grad.copy_(g.view_as(grad))


PROJECTION = OrthoGrad()  # the settings; whether it acts is whether this module is registered


def enable(rescale: bool = True) -> None:
    """Turn ⊥Grad on in this process: register this plugin with the plugin manager."""
    from grokplug.plugins import get_plugin_manager

    PROJECTION.rescale = rescale
    get_plugin_manager().set_builtin_enabled(__name__, True)


def disable() -> None:
    """Turn it off again: unregister this plugin."""
    from grokplug.plugins import get_plugin_manager

    get_plugin_manager().set_builtin_enabled(__name__, False)


@hookimpl
def grokplug_transform_gradients(model: torch.nn.Module, step: int) -> None:
    PROJECTION.apply(model)  # registered only while enabled (grokplug.plugins.GRADIENT_PLUGINS)
