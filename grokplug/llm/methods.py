"""LLM unlearning methods for grokplug's method registry: ``llm-ga``, ``llm-graddiff``, ``npo``,
``simnpo``, ``idkdpo``, ``rmu``.

Each registered object is an :class:`LLMMethod` (``domain = "llm"``) whose ``trainer_cls`` is one of the
``transformers.Trainer`` subclasses of :mod:`grokplug.llm.trainers` (OU's definitions and defaults).
``defaults`` = the method's arguments + a few training arguments; any other ``TrainingArguments``
field is accepted as a hyperparameter too. ``run(model, data, **hparams)`` builds the Trainer and
trains; the model is changed in place and returned.

This module imports neither torch nor transformers (``grokplug plugins`` lists the methods without
them); the Trainer classes are importable from here as well (``from grokplug.llm.methods import NPO``),
loaded on first use.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .._unlearning_method import UnlearningMethod
from ..errors import UsageError
from .training_args import make_training_args, split_hparams, training_arg_names

__all__ = [
    "LLM_METHODS",
    "OU_TRAINING_DEFAULTS",
    "TRAINING_DEFAULTS",
    "LLMMethod",
    "LLMUnlearnData",
    "make_training_args",
    "split_hparams",
    "training_arg_names",
]

#: Offline defaults for tiny models (constant LR so steps-to-target does not depend on max_steps).
TRAINING_DEFAULTS: Mapping[str, Any] = {
    "learning_rate": 1e-4,
    "max_steps": 100,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "lr_scheduler_type": "constant",
    "seed": 0,
}

#: OU's ``configs/trainer/finetune.yaml`` (profile ``"ou"``): 10 epochs, warmup 1 epoch (ratio 0.1),
#: effective batch 32. OU's ``paged_adamw_32bit`` needs bitsandbytes, so plain AdamW is used.
OU_TRAINING_DEFAULTS: Mapping[str, Any] = {
    "learning_rate": 1e-5,
    "max_steps": -1,
    "num_train_epochs": 10,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 4,
    "weight_decay": 0.01,
    "warmup_steps": 0.1,
    "lr_scheduler_type": "linear",
    "seed": 0,
}


@dataclass
class LLMUnlearnData:
    """What an LLM method trains on.

    ``forget``/``retain`` are item datasets (:class:`grokplug.llm.qa.QADataset`; for IdkDPO the forget
    set gives ``{"original", "alternate"}`` items, :class:`~grokplug.llm.qa.IdkQADataset`).
    ``train_dataset`` defaults to ``ForgetRetainDataset(forget, retain, anchor="forget", seed=seed)``
    and ``collator`` to ``DataCollatorForSupervisedDataset(tokenizer)``.
    """

    forget: Any = None
    retain: Any = None
    tokenizer: Any = None
    collator: Callable[[list[Any]], Any] | None = None
    train_dataset: Any = None
    eval_dataset: Any = None
    seed: int | None = 0

    def training_dataset(self) -> Any:
        if self.train_dataset is not None:
            return self.train_dataset
        if self.forget is None:
            raise UsageError("LLMUnlearnData needs a forget dataset (or a ready train_dataset)")
        from .qa import ForgetRetainDataset

        return ForgetRetainDataset(self.forget, self.retain, anchor="forget", seed=self.seed)

    def data_collator(self) -> Callable[[list[Any]], Any]:
        if self.collator is not None:
            return self.collator
        if self.tokenizer is None:
            raise UsageError("LLMUnlearnData needs a tokenizer (for padding) or a collator")
        from .qa import DataCollatorForSupervisedDataset

        return DataCollatorForSupervisedDataset(self.tokenizer, padding_side="right")


def build_trainer(
    trainer_cls: type,
    model: Any,
    data: LLMUnlearnData,
    *,
    method_kwargs: Mapping[str, Any],
    training_kwargs: Mapping[str, Any],
    output_dir: str | Path,
    callbacks: Iterable[Any] = (),
    tokenizer_kw: str | None = None,
) -> Any:
    """Instantiate ``trainer_cls`` the way OU's ``load_trainer`` does (all keywords, never positional)."""
    kwargs: dict[str, Any] = {
        "model": model,
        "args": make_training_args(output_dir, **training_kwargs),
        "train_dataset": data.training_dataset(),
        "eval_dataset": data.eval_dataset,
        "data_collator": data.data_collator(),
        "callbacks": list(callbacks),
        **method_kwargs,
    }
    if data.tokenizer is not None:
        from .trainers import TOKENIZER_KEYWORD  # what the installed transformers' Trainer takes

        kwargs[tokenizer_kw or TOKENIZER_KEYWORD] = data.tokenizer
    return trainer_cls(**kwargs)


class LLMMethod(UnlearningMethod):
    """An LLM unlearning method: a Trainer subclass plus its default hyperparameters.

    Profiles: ``"offline"`` (tiny models, :data:`TRAINING_DEFAULTS`) and ``"ou"`` (OU's recipe,
    :data:`OU_TRAINING_DEFAULTS`). ``forget_item`` says which forget dataset the method needs:
    ``"qa"`` (:class:`~grokplug.llm.qa.QADataset`) or ``"idk"`` (:class:`~grokplug.llm.qa.IdkQADataset`).
    """

    domain: ClassVar[str] = "llm"
    trainer_name: ClassVar[str] = ""
    method_defaults: ClassVar[Mapping[str, Any]] = {}
    forget_item: ClassVar[str] = "qa"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {**TRAINING_DEFAULTS, **cls.method_defaults}

    @property
    def trainer_cls(self) -> type:
        """The ``transformers.Trainer`` subclass (imports transformers on first use)."""
        return getattr(importlib.import_module("grokplug.llm.trainers"), self.trainer_name)

    def hyperparameters(self, profile: str = "offline", **overrides: Any) -> dict[str, Any]:
        if profile not in ("offline", "ou", "cifar", "auto"):  # "cifar" (vision) and "auto" mean offline here
            raise UsageError(
                f"unknown profile {profile!r} for LLM method {self.name!r}; use 'offline' or 'ou'"
            )
        params = dict(self.defaults)
        if profile == "ou":
            params.update(OU_TRAINING_DEFAULTS)
        unknown = sorted(set(overrides) - set(params) - training_arg_names())
        if unknown:
            raise UsageError(
                f"method {self.name!r} has no hyperparameter(s) {', '.join(unknown)}; it takes: "
                f"{', '.join(sorted(params))} and any TrainingArguments field"
            )
        params.update(overrides)
        return params

    def build_trainer(
        self,
        model: Any,
        data: LLMUnlearnData,
        *,
        callbacks: Iterable[Any] = (),
        output_dir: str | Path | None = None,
        ref_model: Any = None,
        training_args: Mapping[str, Any] | None = None,
        **hparams: Any,
    ) -> Any:
        """The ready Trainer (not yet trained). ``training_args`` may set any other TrainingArguments field."""
        method_kwargs, training_kwargs = split_hparams(hparams, self.method_defaults)
        if ref_model is not None:
            method_kwargs["ref_model"] = ref_model
        return build_trainer(
            self.trainer_cls, model, data, method_kwargs=method_kwargs,
            training_kwargs={**training_kwargs, **dict(training_args or {})},
            output_dir=output_dir if output_dir is not None else tempfile.mkdtemp(prefix="grokplug-llm-"),
            callbacks=callbacks,
        )  # fmt: skip

    def run(
        self,
        model: Any,
        data: LLMUnlearnData,
        *,
        callbacks: Iterable[Any] = (),
        output_dir: str | Path | None = None,
        ref_model: Any = None,
        training_args: Mapping[str, Any] | None = None,
        **hparams: Any,
    ) -> Any:
        """Train ``model`` with this method (changed in place) and return it."""
        tmp = None if output_dir is not None else tempfile.mkdtemp(prefix="grokplug-llm-")
        try:
            trainer = self.build_trainer(
                model, data, callbacks=callbacks, output_dir=output_dir or tmp, ref_model=ref_model,
                training_args=training_args, **hparams,
            )  # fmt: skip
            trainer.train()
            return trainer.model
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


class LLMGradAscent(LLMMethod):
    """Gradient ascent on the forget set (OU GradAscent)."""

    name = "llm-ga"
    trainer_name = "GradAscent"
    description = "gradient ascent on the forget answers (OU GradAscent)"


class LLMGradDiff(LLMMethod):
    """Gradient difference: ascent on forget, descent on retain (OU GradDiff)."""

    name = "llm-graddiff"
    trainer_name = "GradDiff"
    description = "gradient ascent on forget + NLL/KL on retain (OU GradDiff)"
    method_defaults = {"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"}


class LLMNPO(LLMMethod):
    name = "npo"
    trainer_name = "NPO"
    description = "negative preference optimisation against the start checkpoint (OU NPO)"
    method_defaults = {"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"}


class LLMSimNPO(LLMMethod):
    name = "simnpo"
    trainer_name = "SimNPO"
    description = "reference-free, length-normalised NPO (OU SimNPO)"
    method_defaults = {"delta": 0.0, "beta": 4.5, "gamma": 0.125, "alpha": 1.0, "retain_loss_type": "NLL"}


class LLMIdkDPO(LLMMethod):
    name = "idkdpo"
    trainer_name = "DPO"
    description = "DPO towards 'I don't know' answers against the start checkpoint (OU DPO + idk data)"
    method_defaults = {"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"}
    forget_item = "idk"


class LLMRMU(LLMMethod):
    name = "rmu"
    trainer_name = "RMU"
    description = "representation misdirection of one layer's forget activations (OU RMU)"
    method_defaults = {
        "steering_coeff": 2.0, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "EMBED_DIFF",
        "module_regex": None, "trainable_params_regex": (".*",), "activation_loss": "ou",
    }  # fmt: skip


LLM_METHODS: tuple[type[LLMMethod], ...] = (LLMGradAscent, LLMGradDiff, LLMNPO, LLMSimNPO, LLMIdkDPO, LLMRMU)

_TRAINERS = {"UnlearnTrainer", "GradAscent", "GradDiff", "NPO", "SimNPO", "DPO", "IdkDPO", "RMU"}


def __getattr__(name: str) -> Any:  # PEP 562: the Trainer classes, without importing transformers eagerly
    if name in _TRAINERS:
        return getattr(importlib.import_module("grokplug.llm.trainers"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
