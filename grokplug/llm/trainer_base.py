"""OU's UnlearnTrainer base: the Trainer subclass every LLM unlearning method extends (its loss hooks, the
reference model, the version shims for the installed transformers). The methods are in
grokplug/llm/trainers.py.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import Trainer

from ..errors import UsageError
from .losses import (
    compute_kl_divergence,
    model_inputs,
)

__all__ = ["OPTIMIZER_TAKES_MODEL", "TOKENIZER_KEYWORD", "UnlearnTrainer"]


# transformers 4.46 renamed ``tokenizer=`` to ``processing_class=`` and began passing
# ``num_items_in_batch`` to ``compute_loss``; 4.5x lets ``create_optimizer`` take the model.
# open-unlearning pins 4.45.1, so both sides are supported.
_TRAINER_INIT = set(inspect.signature(Trainer.__init__).parameters)


_TRAINER_COUNTS_ITEMS = "num_items_in_batch" in inspect.signature(Trainer.compute_loss).parameters


OPTIMIZER_TAKES_MODEL = len(inspect.signature(Trainer.create_optimizer).parameters) > 1


TOKENIZER_KEYWORD = "processing_class" if "processing_class" in _TRAINER_INIT else "tokenizer"


class UnlearnTrainer(Trainer):
    """Base class: OU's ``UnlearnTrainer`` + ``GradDiff`` plumbing (reference model, retain term).

    Subclasses implement :meth:`compute_forget_loss`. ``evaluators`` and ``template_args`` are kept for
    OU compatibility (stored, not run: grokplug evaluates through its step monitor and ``evaluate_tofu``).
    ``tokenizer=`` is accepted as an alias of ``processing_class=``.
    """

    needs_reference: ClassVar[bool] = False
    uses_retain: ClassVar[bool] = True
    retain_loss_types: ClassVar[tuple[str, ...]] = ("NLL", "KL")
    # The loss is a per-batch mean, never normalised by num_items_in_batch: let training_step divide by
    # the accumulation steps itself.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        gamma: float = 1.0,
        alpha: float = 1.0,
        retain_loss_type: str | None = "NLL",
        ref_model: nn.Module | None = None,
        evaluators: Any = None,
        template_args: Any = None,
        tokenizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if tokenizer is not None and kwargs.get("processing_class") is None:
            kwargs["processing_class"] = tokenizer
        if TOKENIZER_KEYWORD == "tokenizer" and "processing_class" in kwargs:
            kwargs["tokenizer"] = kwargs.pop("processing_class")
        if self.uses_retain and retain_loss_type not in self.retain_loss_types:
            raise UsageError(
                f"{type(self).__name__}: retain_loss_type must be one of {', '.join(self.retain_loss_types)}, "
                f"not {retain_loss_type!r}"
            )
        self.evaluators, self.template_args = evaluators, template_args
        super().__init__(*args, **kwargs)
        # The Trainer would drop the nested "forget"/"retain" keys as columns the model does not take.
        self.args.remove_unused_columns = False
        self.gamma, self.alpha, self.retain_loss_type = float(gamma), float(alpha), retain_loss_type
        self.last_losses: dict[str, torch.Tensor] = {}
        self._plain_loss = False
        self.ref_model: nn.Module | None = None
        if ref_model is not None:
            self.ref_model = self._prepare_ref_model(ref_model, copy_model=False)
        elif self.needs_reference or retain_loss_type == "KL":
            assert self.model is not None  # the Trainer was given the model being unlearned
            self.ref_model = self._prepare_ref_model(self.model)

    # -- reference model -----------------------------------------------------------------------

    def _prepare_ref_model(self, model: nn.Module, *, copy_model: bool = True) -> nn.Module:
        """A frozen (eval, no grad) copy of ``model`` on the training device; accelerate-prepared when distributed."""
        base = self.accelerator.unwrap_model(model)
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.zero_stage == 3:
            raise UsageError(
                "a reference model under DeepSpeed ZeRO-3 is not supported; use ZeRO-2, DDP or FSDP"
            )
        ref = copy.deepcopy(base) if copy_model else base
        ref.eval()
        ref.requires_grad_(False)
        if len(set((getattr(ref, "hf_device_map", None) or {}).values())) <= 1:  # not spread over devices
            ref.to(self.args.device)
        if self.accelerator.num_processes > 1 and plugin is None:
            ref = self.accelerator.prepare_model(ref, evaluation_mode=True)
        return ref

    # -- losses --------------------------------------------------------------------------------

    def compute_forget_loss(self, model: nn.Module, forget: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        """``(forget loss, outputs)`` for the ``inputs["forget"]`` part of a batch."""
        raise NotImplementedError(f"{type(self).__name__} does not define a forget loss")

    def compute_retain_loss(self, model: nn.Module, retain_inputs: Mapping[str, Any]) -> torch.Tensor:
        if self.retain_loss_type == "NLL":
            return model(**retain_inputs).loss
        if self.retain_loss_type == "KL":
            assert self.ref_model is not None
            return compute_kl_divergence(model, self.ref_model, retain_inputs)[0]
        raise UsageError(
            f"retain_loss_type {self.retain_loss_type!r} is not implemented for {type(self).__name__}"
        )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: Mapping[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        if self._plain_loss:  # evaluation: the model's own LM loss, as OU's prediction_step
            if not _TRAINER_COUNTS_ITEMS:  # transformers < 4.46 (OU's pin 4.45.1) has no such keyword
                return super().compute_loss(model, dict(inputs), return_outputs=return_outputs)
            return super().compute_loss(
                model, dict(inputs), return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        if "forget" not in inputs:
            raise UsageError(
                f"{type(self).__name__} needs batches shaped {{'forget': ..., 'retain': ...}} (use ForgetRetainDataset "
                f"and DataCollatorForSupervisedDataset); got keys {sorted(map(str, inputs))}"
            )
        forget_loss, outputs = self.compute_forget_loss(model, inputs["forget"])
        loss = self.gamma * forget_loss
        self.last_losses = {"forget": forget_loss.detach()}
        if self.uses_retain and self.alpha != 0.0:
            if "retain" not in inputs:
                raise UsageError(
                    f"{type(self).__name__} with alpha={self.alpha} needs a 'retain' part in every batch"
                )
            retain_loss = self.compute_retain_loss(model, model_inputs(inputs["retain"]))
            loss = loss + self.alpha * retain_loss
            self.last_losses["retain"] = retain_loss.detach()
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluation never calls the unlearning loss (OU calls ``Trainer.compute_loss`` here too)."""
        self._plain_loss = True
        try:
            return super().prediction_step(*args, **kwargs)
        finally:
            self._plain_loss = False
