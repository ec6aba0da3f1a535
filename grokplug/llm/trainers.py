"""LLM unlearning methods as ``transformers.Trainer`` subclasses, with open-unlearning's definitions.

Batches are OU's: ``{"forget": {input_ids, attention_mask, labels}, "retain": {...}}``, and for DPO
``{"forget": {"original": {...}, "alternate": {...}}, "retain": {...}}`` (build them with
:class:`grokplug.llm.qa.ForgetRetainDataset` and :class:`~grokplug.llm.qa.DataCollatorForSupervisedDataset`).
Every loss is ``gamma · forget + alpha · retain``; the retain term is ``NLL`` or ``KL`` (against the
reference), RMU adds ``EMBED_DIFF``.

The reference model is a frozen deep copy of the model **as handed to the trainer**: the start
checkpoint (θ_grok when unlearning from θ_grok), exactly as OU's ``_prepare_ref_model``. Pass
``ref_model=`` to use another one (e.g. θ_pre). It is created only when the loss needs it (NPO, DPO,
RMU, and ``retain_loss_type="KL"``), because it doubles model memory.

Differences from OU d3d7cf9, on purpose: ``compute_loss`` takes ``num_items_in_batch`` (transformers
≥ 4.46 passes it); the KL retain term differentiates through ``model`` (OU uses ``self.model``, which
skips the DDP wrapper); RMU restores each parameter's own ``requires_grad`` after building its
optimizer (OU sets all to ``True``); a zero ``alpha`` skips the retain forward pass (same loss).
RMU's defaults and its remaining differences are listed in :class:`RMU`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from .losses import (
    ACTIVATION_REDUCTIONS,
    activation_mse,
    compute_dpo_loss,
    forward_with_cache,
    model_inputs,
    npo_loss,
    simnpo_loss,
)
from .trainer_base import OPTIMIZER_TAKES_MODEL, TOKENIZER_KEYWORD, UnlearnTrainer

__all__ = [
    "DPO",
    "TOKENIZER_KEYWORD",
    "RMU",
    "GradAscent",
    "GradDiff",
    "IdkDPO",
    "NPO",
    "SimNPO",
    "UnlearnTrainer",
    "last_layer_regex",
    "rmu_layer_regex",
]


class GradAscent(UnlearnTrainer):
    """Gradient ascent: ``-NLL`` on the forget set; the retain part of a batch is ignored (OU)."""

    uses_retain = False

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        outputs = model(**model_inputs(forget))
        return -outputs.loss, outputs


class GradDiff(UnlearnTrainer):
    """Gradient difference: ``gamma · (−NLL_forget) + alpha · retain`` (γ = α = 1, retain NLL)."""

    compute_forget_loss = GradAscent.compute_forget_loss


class NPO(GradDiff):
    """Negative preference optimisation: ``-2/β · logσ(β·(NLL_θ − NLL_ref))`` on summed sequence NLLs (β = 0.1)."""

    needs_reference = True

    def __init__(self, *args: Any, beta: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beta = float(beta)

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        assert self.ref_model is not None
        return npo_loss(model, self.ref_model, forget, beta=self.beta)


class SimNPO(GradDiff):
    """SimNPO: ``-2/β · logσ(β·(NLL_sum/len − δ))``, reference-free (δ = 0, β = 4.5, γ = 0.125, α = 1)."""

    def __init__(
        self, *args: Any, delta: float = 0.0, beta: float = 4.5, gamma: float = 0.125, **kwargs: Any
    ) -> None:
        super().__init__(*args, gamma=gamma, **kwargs)
        self.delta, self.beta = float(delta), float(beta)

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        return simnpo_loss(model, forget, beta=self.beta, delta=self.delta)


class DPO(GradDiff):
    """DPO with the alternate (IDK) answer as winner and the original as loser (IdkDPO; β = 0.1).

    Needs ``inputs["forget"] = {"original": ..., "alternate": ...}`` (:class:`grokplug.llm.qa.IdkQADataset`).
    """

    needs_reference = True

    def __init__(self, *args: Any, beta: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beta = float(beta)

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        if "original" not in forget or "alternate" not in forget:
            raise UsageError("DPO needs forget items {'original': ..., 'alternate': ...} (IdkQADataset)")
        assert self.ref_model is not None
        return compute_dpo_loss(
            model,
            self.ref_model,
            win_inputs=forget["alternate"],
            lose_inputs=forget["original"],
            beta=self.beta,
        )


IdkDPO = DPO


def _decoder_layers(model: nn.Module) -> dict[int, str]:
    layers: dict[int, str] = {}
    for name, _ in model.named_modules():
        match = re.fullmatch(r"(?:.*\.)?layers\.(\d+)", name)
        if match:
            layers[int(match.group(1))] = name
    if not layers:
        raise UsageError("RMU found no '<...>.layers.<i>' module in the model; pass module_regex=")
    return layers


#: the layer OU's RMU steers (``module_regex: model\.layers\.7``, from WMDP's ``--layer_id 7``)
OU_RMU_LAYER = 7


def rmu_layer_regex(model: nn.Module) -> str:
    """RMU's default layer: OU's ``layers.7`` where the model has it, else the middle layer ``⌊(n−1)/2⌋``.

    The rule for smaller models keeps OU's choice on the model OU runs TOFU with (Llama-3.2-1B,
    16 layers: ⌊15/2⌋ = 7) and picks a middle layer elsewhere (a 2-layer model steers layer 0).
    """
    layers = _decoder_layers(model)
    index = OU_RMU_LAYER if OU_RMU_LAYER in layers else (max(layers) - min(layers)) // 2 + min(layers)
    return re.escape(layers[index])


def last_layer_regex(model: nn.Module) -> str:
    """A regex that fully matches the last decoder layer (``model.layers.<n-1>`` for a Llama); opt-in for RMU."""
    layers = _decoder_layers(model)
    return re.escape(layers[max(layers)])


def _single_module(model: nn.Module, regex: str) -> nn.Module:
    model = getattr(model, "module", model)  # DDP
    matched = {name: mod for name, mod in model.named_modules() if re.fullmatch(regex, name)}
    if len(matched) != 1:
        raise UsageError(
            f"module_regex {regex!r} must match exactly one module, matched {sorted(matched) or 'none'}"
        )
    return next(iter(matched.values()))


class RMU(GradDiff):
    """Representation misdirection: steer the forget activations of one layer to a random vector.

    forget: masked activation MSE of ``module_regex`` to ``steering_coeff ·`` a random unit vector
    (OU ``rmu.py``, from WMDP); retain (``EMBED_DIFF``): activation MSE to the reference model at the
    same layer. Only parameters matching one of ``trainable_params_regex`` are given to the optimizer.

    Defaults as OU, deviations opt-in:

    * ``module_regex=None`` → :func:`rmu_layer_regex`: OU's ``model.layers.7`` where the model has a
      layer 7, else the middle layer ⌊(n−1)/2⌋ (pass ``last_layer_regex(model)`` to steer the last one);
    * ``activation_loss="ou"``: OU's ``compute_activation_loss`` including its ``[B]/[B,1]`` broadcast
      (:func:`~grokplug.llm.losses.activation_mse`); ``"per_sequence"`` is each sequence's own mean.

    Remaining differences from OU: ``steering_coeff`` 2 and ``trainable_params_regex`` ``[".*"]`` are
    OU's TOFU experiment values at snapshot d3d7cf9 (the ``RMU`` class itself defaults to 20 and layers
    5–7 ``mlp.down_proj.weight``; a later ``configs/trainer/RMU.yaml``, 8f9872c, uses steering 300 and
    α 1000); ``requires_grad`` flags are restored to each parameter's own value after the optimizer is
    built (OU freezes everything else and sets the selected ones to ``True``).
    """

    needs_reference = True
    retain_loss_types = ("NLL", "KL", "EMBED_DIFF")

    def __init__(
        self,
        *args: Any,
        module_regex: str | None = None,
        trainable_params_regex: Sequence[str] = (".*",),
        steering_coeff: float = 2.0,
        retain_loss_type: str = "EMBED_DIFF",
        activation_loss: str = "ou",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, retain_loss_type=retain_loss_type, **kwargs)
        if activation_loss not in ACTIVATION_REDUCTIONS:
            raise UsageError(f"activation_loss must be one of {', '.join(ACTIVATION_REDUCTIONS)}, got {activation_loss!r}")
        self.activation_loss = activation_loss
        if isinstance(trainable_params_regex, str):
            trainable_params_regex = [trainable_params_regex]
        self.trainable_params_regex = list(trainable_params_regex)
        assert self.model is not None  # the Trainer was given the model being unlearned
        self.module_regex = module_regex or rmu_layer_regex(self.accelerator.unwrap_model(self.model))
        self.model_module = _single_module(self.model, self.module_regex)
        assert self.ref_model is not None
        self.ref_module = _single_module(self.ref_model, self.module_regex)
        self.steering_coeff = float(steering_coeff)
        self.control_vec: torch.Tensor | None = None

    def create_optimizer(self, model: nn.Module | None = None) -> Any:
        target = self.model if model is None else model
        assert target is not None
        before = {name: p.requires_grad for name, p in target.named_parameters()}
        for name, param in target.named_parameters():
            param.requires_grad = before[name] and any(
                re.fullmatch(p, name) for p in self.trainable_params_regex
            )
        if not any(p.requires_grad for p in target.parameters()):
            raise UsageError(
                f"trainable_params_regex {self.trainable_params_regex} selects no trainable parameter"
            )
        try:
            if OPTIMIZER_TAKES_MODEL:
                return super().create_optimizer(model)
            return super().create_optimizer()  # transformers < 4.5x: builds for self.model
        finally:
            for name, param in target.named_parameters():
                param.requires_grad = before[name]

    def get_control_vector(self, dim: int) -> torch.Tensor:
        if self.control_vec is None:  # global torch RNG, as OU (seeded by the Trainer from args.seed)
            vec = torch.rand(1, 1, dim)
            self.control_vec = vec / torch.norm(vec) * self.steering_coeff
        return self.control_vec

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        activations, outputs = forward_with_cache(model, forget, self.model_module, no_grad=False)
        control = forget.get("control_vec")
        control = self.get_control_vector(activations.shape[-1]) if control is None else control
        control = control.to(dtype=activations.dtype, device=activations.device).expand_as(activations)
        return activation_mse(activations, control, forget["labels"] != -100, self.activation_loss), outputs

    def compute_retain_loss(self, model: nn.Module, retain_inputs: Mapping[str, Any]) -> torch.Tensor:
        if self.retain_loss_type != "EMBED_DIFF":
            return super().compute_retain_loss(model, retain_inputs)
        assert self.ref_model is not None
        acts, _ = forward_with_cache(model, retain_inputs, self.model_module, no_grad=False)
        ref_acts, _ = forward_with_cache(self.ref_model, retain_inputs, self.ref_module, no_grad=True)
        return activation_mse(acts, ref_acts.to(acts.device), retain_inputs["labels"] != -100, self.activation_loss)
