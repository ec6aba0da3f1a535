"""Adapters that run third-party unlearning methods unchanged from a grok-aware start.

Installed as ``grokplug.adapters``. Each adapter turns a method written in its toolkit's own shape
into a grokplug :class:`~grokplug._unlearning_method.UnlearningMethod`; ``grokplug.unlearn`` loads θ_pre or
θ_grok into the model first and counts the optimizer steps the method takes (also those of
optimizers it builds itself). ``run`` always returns an ``nn.Module``: the method's return value if
it is one, else the model it changed in place.

OPTML (Unlearn-Sparse / SalUn), a per-epoch body or a whole method from a checkout::

    from grokplug.adapters import OptmlAdapter, from_toolkit
    rl = OptmlAdapter(RL_epoch_body, args={"unlearn_epochs": 5}, cuda_shim=True)
    salun = from_toolkit("Unlearn-Saliency/Classification", "RL", mask=saliency_mask)

NeurIPS-2023 starting kit, DeepUnlearn-style classes, SSD-style one-shot transforms::

    from grokplug.adapters import KitAdapter, TransformAdapter, UnlearnerAdapter
    kit = KitAdapter(unlearning)                       # unlearning(net, retain, forget, validation)
    ft = UnlearnerAdapter(Finetune, init_kwargs={"cfg": cfg})
    ssd = TransformAdapter(ssd_dampen, defaults={"dampening_constant": 1.0}, strength_param="dampening_constant")

Register any of them from a plugin, or pass one straight to ``grokplug.unlearn``::

    @hookimpl
    def grokplug_register_methods(register):
        register("optml-rl", rl)

Flat-script toolkits with generic module names (``utils``, ``models``, ``datasets``) are imported in
isolation with :func:`load_toolkit`; adapters enter :meth:`Toolkit.active` around every call to a
callable that came from one.

HF Trainer subclasses (open-unlearning's GradDiff, NPO, ... unchanged, old or new ``compute_loss``)::

    from grokplug.adapters import TrainerAdapter
    npo = TrainerAdapter(NPO, beta=0.1, evaluators=None, template_args=None)
    result = npo.unlearn(data, model, source="runs/tofu", start="grok", forget_score=forget_prob)
"""

from __future__ import annotations

from ._calling import cuda_shim
from ._isolate import ForeignMethod, Toolkit, load_toolkit, toolkit_of
from .kit import KitAdapter
from .optml import OPTML_ARGS, OPTML_DATASETS, OptmlAdapter, from_toolkit, optml_loaders, private_loader
from .perturber import SSD_PARAMETERS, PerturberAdapter
from .toolkit_fixes import ToolkitImportError, patch_module, stub_module
from .trainer import TrainerAdapter, wrap_trainer_class
from .transform import TransformAdapter, TripleBatches
from .unlearner import UnlearnerAdapter

__all__ = [
    "OPTML_ARGS",
    "OPTML_DATASETS",
    "SSD_PARAMETERS",
    "ForeignMethod",
    "KitAdapter",
    "OptmlAdapter",
    "PerturberAdapter",
    "Toolkit",
    "ToolkitImportError",
    "TrainerAdapter",
    "TransformAdapter",
    "TripleBatches",
    "UnlearnerAdapter",
    "cuda_shim",
    "from_toolkit",
    "load_toolkit",
    "optml_loaders",
    "patch_module",
    "private_loader",
    "stub_module",
    "toolkit_of",
    "wrap_trainer_class",
]
