"""Built-in vision methods and metrics: FT, GA, RL, GradDiff, ℓ1-sparse, SalUn, SCRUB, SSD, Fisher, ∇τ; accuracy, MIA.

Method names are lower-case (``grokplug unlearn --method salun``); the paper / toolkit spellings
(``SalUn``, ``l1_sparse``, ``NegGrad+`` ...) are aliases. torch and scikit-learn are imported only
when the registries are first built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grokplug.hooks.specs import RegisterFn

from . import hookimpl

if TYPE_CHECKING:
    import torch

    from grokplug.vision.data import VisionData

#: registry name -> aliases (the spellings the papers and toolkits use)
METHOD_ALIASES: dict[str, tuple[str, ...]] = {
    "ft": ("FT", "finetune"),
    "ga": ("GA", "gradient-ascent", "neggrad"),
    "rl": ("RL", "random-labels"),
    "graddiff": ("GradDiff", "grad-diff", "NegGrad+", "neggrad+"),
    "l1-sparse": ("L1Sparse", "l1_sparse", "FT_l1", "l1sparse"),
    "salun": ("SalUn",),
    "scrub": ("SCRUB",),
    "ssd": ("SSD",),
    "fisher": ("Fisher", "FisherForgetting", "fisher-forgetting"),
    "nabla-tau": ("NablaTau", "nabla_tau"),  # ASCII only: method names follow one documented pattern
}


@hookimpl
def grokplug_register_methods(register: RegisterFn) -> None:
    from grokplug.vision.methods import FT, GA, RL, GradDiff, L1Sparse
    from grokplug.vision.methods_paper import FisherForgetting, NablaTau
    from grokplug.vision.methods_salun_scrub_ssd import SCRUB, SSD, SalUn

    for method_cls in (FT, GA, RL, GradDiff, L1Sparse, SalUn, SCRUB, SSD, FisherForgetting, NablaTau):
        register(method_cls.name, method_cls(), aliases=METHOD_ALIASES[method_cls.name])


def forget_acc(model: torch.nn.Module, data: VisionData) -> float:
    """Accuracy on the forget set: the paper's UA (higher = worse forgetting)."""
    from grokplug.vision.metrics import accuracy

    return accuracy(model, data.forget)


def retain_acc(model: torch.nn.Module, data: VisionData) -> float:
    """Accuracy on the retain set (OPTML's RA)."""
    from grokplug.vision.metrics import accuracy

    return accuracy(model, data.retain)


def test_acc(model: torch.nn.Module, data: VisionData) -> float:
    """Accuracy on the held-out test set (``data.test``, else ``data.val``; OPTML's TA)."""
    from grokplug.vision.metrics import accuracy

    held_out = data.test if data.test is not None else data.val
    if held_out is None:
        from grokplug.errors import UsageError

        raise UsageError("test_acc needs a test (or val) loader in the VisionData")
    return accuracy(model, held_out)


test_acc.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it when imported in tests


@hookimpl
def grokplug_register_metrics(register: RegisterFn) -> None:
    from grokplug.vision.metrics import accuracy, evaluate_vision, mia_loss_lr, mia_svc_efficacy

    register("accuracy", accuracy)
    # no "UA" alias on purpose: the paper's UA is forget_acc, OPTML's is 1 - forget_acc
    register("forget_acc", forget_acc)
    register("retain_acc", retain_acc)
    register("test_acc", test_acc)
    register("mia_svc_efficacy", mia_svc_efficacy, aliases=("MIA-Efficacy",))
    register("mia_loss_lr", mia_loss_lr, aliases=("simple_mia",))
    register("evaluate_vision", evaluate_vision)


@hookimpl
def grokplug_register_domains(register: RegisterFn) -> None:
    from grokplug.vision.domain import VisionDomain

    register("vision", VisionDomain())
