"""Run a third-party ``transformers.Trainer`` subclass unchanged from a grok-aware start.

:class:`TrainerAdapter` takes an unlearning Trainer written for its own toolkit (open-unlearning's
``GradDiff``/``NPO``/... at d3d7cf9, or any other) and:

* loads θ_grok / θ_pre into the model through grokplug (``source=`` run dir + ``start=`` phase), or
  uses the model you already loaded;
* runs classes whose ``compute_loss`` has the **old** signature ``(model, inputs, return_outputs=False)``
  under transformers ≥ 4.46 (which passes ``num_items_in_batch=``): a subclass built on the fly drops
  the keyword when the method does not take it (and then marks the loss as not GA-normalised);
* accepts ``tokenizer=`` and ``processing_class=`` wherever they are passed (also by the class's own
  ``super().__init__``) and hands the installed ``Trainer`` the one it knows; ``self.tokenizer`` keeps
  working on transformers 5;
* passes OU's extra keywords through (``gamma``, ``alpha``, ``beta``, ``retain_loss_type``,
  ``evaluators=None``, ``template_args=None`` ...), checked against the class's ``__init__`` chain at
  wrap time, so a typo fails before any training;
* installs :class:`~grokplug.llm.monitor.TrainerStepMonitor` (steps-to-target, ``on_unlearn_step``) and
  fires ``before_unlearn``/``after_unlearn`` as a ``TrainerCallback``.

Running an open-unlearning method this way (OU's ``src`` on ``sys.path``; nothing in OU edited)::

    from grokplug.adapters import TrainerAdapter
    from grokplug.llm.methods import LLMUnlearnData
    from grokplug.llm.qa import QADataset, DataCollatorForSupervisedDataset
    from trainer.unlearn.npo import NPO                       # OU's class, old compute_loss signature

    npo = TrainerAdapter(NPO, beta=0.1, alpha=1.0, gamma=1.0, retain_loss_type="NLL",
                         evaluators=None, template_args=None)
    data = LLMUnlearnData(forget=QADataset(forget10, tok), retain=QADataset(retain90, tok), tokenizer=tok)
    result = npo.unlearn(data, model, source="runs/tofu", start="grok",   # θ_grok loaded, NPO's ref = θ_grok
                         forget_score=forget_prob, target="frac:0.5", max_steps=200, learning_rate=1e-5)
    print(result.steps_to_target, result.trail[-1])

``TrainerAdapter`` is also an :class:`~grokplug.UnlearningMethod` (``domain = "llm"``): register it
from a plugin with ``register("ou-npo", npo)``; ``run(model, data, **hparams)`` trains without firing
the lifecycle hooks (the calling session fires them).
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from grokplug._unlearning_method import UnlearningMethod
from grokplug.errors import UsageError

__all__ = ["TrainerAdapter", "wrap_trainer_class"]

_WRAPPED: dict[type, type] = {}


def _takes(fn: Any, name: str) -> bool:
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def init_keywords(cls: type) -> set[str] | None:
    """Keywords the ``__init__`` chain of ``cls`` accepts (``None``: anything, a ``**kwargs`` reaches ``object``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def _shim() -> type:
    """A class placed right before ``transformers.Trainer`` in the MRO: fixes the tokenizer keyword."""
    from transformers import Trainer

    accepted = set(inspect.signature(Trainer.__init__).parameters)

    class _TokenizerShim(Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if "tokenizer" in kwargs and "tokenizer" not in accepted:
                tok = kwargs.pop("tokenizer")
                if kwargs.get("processing_class") is None:
                    kwargs["processing_class"] = tok
            if "processing_class" in kwargs and "processing_class" not in accepted:
                tok = kwargs.pop("processing_class")
                if kwargs.get("tokenizer") is None:
                    kwargs["tokenizer"] = tok
            super().__init__(*args, **kwargs)

    if not hasattr(Trainer, "tokenizer"):  # transformers 5 removed it; OU's evaluate() reads self.tokenizer

        def _get(self: Any) -> Any:
            return self.__dict__.get("processing_class")

        def _set(self: Any, value: Any) -> None:
            self.__dict__["processing_class"] = value

        _TokenizerShim.tokenizer = property(_get, _set)  # type: ignore[attr-defined]
    return _TokenizerShim


def wrap_trainer_class(trainer_cls: type) -> type:
    """A subclass of ``trainer_cls`` that runs on the installed transformers (cached per class)."""
    from transformers import Trainer

    if not (inspect.isclass(trainer_cls) and issubclass(trainer_cls, Trainer)):
        raise UsageError(f"{trainer_cls!r} is not a transformers.Trainer subclass")
    if getattr(trainer_cls, "__grokplug_wrapped__", None) is not None:
        return trainer_cls
    if trainer_cls in _WRAPPED:
        return _WRAPPED[trainer_cls]
    namespace: dict[str, Any] = {
        "__grokplug_wrapped__": trainer_cls,
        "__module__": trainer_cls.__module__,
        "__qualname__": trainer_cls.__qualname__,
        "__doc__": trainer_cls.__doc__,
    }
    original = trainer_cls.compute_loss
    if not _takes(original, "num_items_in_batch"):

        def compute_loss(
            self: Any, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            return original(self, model, inputs, return_outputs)  # the old signature: keyword dropped

        namespace["compute_loss"] = compute_loss
        if getattr(trainer_cls, "loss_is_scaled_for_ga", None) is None:
            namespace["loss_is_scaled_for_ga"] = False  # not normalised by num_items_in_batch
    wrapped = type(trainer_cls.__name__, (trainer_cls, _shim()), namespace)
    _WRAPPED[trainer_cls] = wrapped
    return wrapped


class TrainerAdapter(UnlearningMethod):
    """Wrap a Trainer subclass as a grokplug method.

    :param trainer_cls: the third-party class, used unchanged.
    :param method_args: its constructor keywords (OU's ``method_args``); overridable per run.
    :param training_defaults: ``TrainingArguments`` defaults for this method (over grokplug's offline ones).
    """

    domain: ClassVar[str] = "llm"

    def __init__(
        self,
        trainer_cls: type,
        *,
        name: str | None = None,
        description: str | None = None,
        training_defaults: Mapping[str, Any] | None = None,
        **method_args: Any,
    ) -> None:
        from grokplug.llm.methods import TRAINING_DEFAULTS, split_hparams

        self.trainer_cls = trainer_cls
        self.wrapped = wrap_trainer_class(trainer_cls)
        self.name = name or trainer_cls.__name__  # type: ignore[misc]
        self.description = description or (inspect.getdoc(trainer_cls) or "").split("\n", 1)[0]  # type: ignore[misc]
        accepted = init_keywords(self.wrapped)
        if accepted is not None:
            bad = sorted(set(method_args) - accepted)
            if bad:
                raise UsageError(f"{trainer_cls.__name__} does not take keyword(s) {', '.join(bad)}")
        self.method_args = dict(method_args)
        split_hparams(dict(training_defaults or {}), ())  # refuses non-TrainingArguments names
        self.defaults = {**TRAINING_DEFAULTS, **dict(training_defaults or {}), **self.method_args}  # type: ignore[misc]

    def hyperparameters(self, profile: str = "offline", **overrides: Any) -> dict[str, Any]:
        from grokplug.llm.methods import training_arg_names

        unknown = sorted(set(overrides) - set(self.defaults) - training_arg_names())
        if unknown:
            raise UsageError(f"{self.name!r} has no hyperparameter(s) {', '.join(unknown)}")
        return {**self.defaults, **overrides}

    def build_trainer(
        self,
        model: Any,
        data: Any,
        *,
        callbacks: Iterable[Any] = (),
        output_dir: str | Path,
        training_args: Mapping[str, Any] | None = None,
        **hparams: Any,
    ) -> Any:
        """The wrapped Trainer, built like OU's ``load_trainer`` (keywords only)."""
        from grokplug.llm.methods import build_trainer, split_hparams

        params = self.hyperparameters(**hparams)
        method_kwargs, training_kwargs = split_hparams(params, self.method_args)
        return build_trainer(
            self.wrapped, model, data, method_kwargs=method_kwargs,
            training_kwargs={**training_kwargs, **dict(training_args or {})}, output_dir=output_dir,
            callbacks=callbacks,
        )  # fmt: skip

    def run(self, model: Any, data: Any, *, callbacks: Iterable[Any] = (), output_dir: str | Path | None = None,
            training_args: Mapping[str, Any] | None = None, **hparams: Any) -> Any:  # fmt: skip
        """Train ``model`` (in place) and return it; no lifecycle hooks (the calling session fires them)."""
        tmp = None if output_dir is not None else tempfile.mkdtemp(prefix="grokplug-trainer-")
        workdir: str | Path = output_dir if output_dir is not None else str(tmp)
        try:
            trainer = self.build_trainer(model, data, callbacks=callbacks, output_dir=workdir,
                                         training_args=training_args, **hparams)  # fmt: skip
            trainer.train()
            return trainer.model
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def unlearn(
        self,
        data: Any,
        model: Any = None,
        *,
        source: Any = None,
        start: str = "grok",
        fallback: str | None = None,
        start_ref: Any = None,
        forget_score: Any = None,
        retain_score: Any = None,
        target: float | str | None = None,
        eval_every: int = 1,
        stop_at_target: bool = True,
        callbacks: Iterable[Any] = (),
        output_dir: str | Path | None = None,
        training_args: Mapping[str, Any] | None = None,
        seed: int = 0,
        **hparams: Any,
    ) -> Any:
        """Load the start and train through :func:`grokplug.unlearn` (monitor, lifecycle hooks); returns an ``UnlearnResult``.

        ``source`` (a run dir or ``CheckpointRef``) + ``start`` (``grok``/``pre``/``final``/step): the
        checkpoint is loaded into ``model`` (built from the run's preset when ``model`` is ``None``).
        Without ``source`` the model is used as given; ``start_ref`` records where it came from.
        ``forget_score``/``retain_score`` (``model -> float``, lower forget = more forgotten) are the
        monitor's probe; ``output_dir`` is the Trainer's working directory.
        """
        from grokplug._unlearn import unlearn

        probe = None
        if forget_score is not None:

            def probe(m: Any) -> dict[str, float]:
                retain = float(retain_score(m)) if retain_score is not None else float("nan")
                return {"forget_acc": float(forget_score(m)), "retain_acc": retain}

        return unlearn(
            self, model, splits=data, source=source, start=start, fallback=fallback, start_ref=start_ref,
            target=target, seed=seed, hparams=hparams, eval_every=eval_every, stop_at_target=stop_at_target,
            probe=probe, callbacks=tuple(callbacks), training_args=training_args, trainer_output_dir=output_dir,
            evaluate=False,
        )  # fmt: skip
