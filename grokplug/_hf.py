"""Track an HF ``Trainer`` run through grokking with a ``TrainerCallback``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ._tracker import GrokTracker

#: Trainer metric names → tracker fields, for ``eval_dataset={"train": ..., "val": ...}`` with a
#: ``compute_metrics`` that returns ``accuracy``.
DEFAULT_METRIC_KEYS: Mapping[str, str] = {
    "eval_train_accuracy": "train_acc",
    "eval_val_accuracy": "val_acc",
    "eval_train_loss": "train_loss",
    "eval_val_loss": "val_loss",
}


class GrokTrackerCallback(TrainerCallback):
    """Feed a :class:`grokplug.GrokTracker` from a ``transformers.Trainer``.

    Two ways to get the accuracies the detector needs:

    * ``evaluate=fn``: ``fn(model) -> {"train_acc", "val_acc", ...}`` runs every ``eval_every``
      optimizer steps (and at step 0) — cheapest for small models;
    * otherwise the Trainer's own evaluations are used: pass ``eval_dataset={"train": ..., "val":
      ...}`` and a ``compute_metrics`` returning ``accuracy``; ``metric_keys`` maps the names.

    It also calls ``grokplug_transform_gradients`` before every optimizer step (grokking
    accelerators) and closes the tracker when training ends (θ_pre/θ_grok pinned, ``grok.json``).
    Resuming a Trainer run is the Trainer's job (``resume_from_checkpoint``).
    """

    def __init__(
        self,
        tracker: GrokTracker,
        *,
        evaluate: Callable[[Any], Mapping[str, float]] | None = None,
        eval_every: int | None = None,
        metric_keys: Mapping[str, str] = DEFAULT_METRIC_KEYS,
        save_optimizer: bool = False,
        close_on_train_end: bool = True,
    ) -> None:
        self.tracker = tracker
        self.evaluate = evaluate
        self.eval_every = eval_every
        self.metric_keys = dict(metric_keys)
        self.save_optimizer = save_optimizer
        self.close_on_train_end = close_on_train_end
        self._pending: dict[int, dict[str, float]] = {}

    def _log(self, step: int, metrics: Mapping[str, float], model: Any, optimizer: Any) -> None:
        self.tracker.log_eval(step, model=model, optimizer=optimizer if self.save_optimizer else None, **metrics)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.evaluate is not None and state.global_step == 0:
            self._log(0, self.evaluate(kwargs["model"]), kwargs["model"], kwargs.get("optimizer"))

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.tracker.before_optimizer_step(kwargs["model"], state.global_step)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        every = self.eval_every or args.eval_steps or args.logging_steps
        if self.evaluate is not None and every and state.global_step % int(every) == 0:
            self._log(state.global_step, self.evaluate(kwargs["model"]), kwargs["model"], kwargs.get("optimizer"))

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.evaluate is not None:
            return
        metrics: Mapping[str, float] = kwargs["metrics"]  # the Trainer passes them by keyword
        # with a dict eval_dataset the Trainer calls this once per split: collect until both accuracies are in
        pending = self._pending.setdefault(state.global_step, {})
        pending.update({field: float(metrics[key]) for key, field in self.metric_keys.items() if key in metrics})
        if "train_acc" in pending and "val_acc" in pending:
            self._log(state.global_step, self._pending.pop(state.global_step), kwargs["model"], kwargs.get("optimizer"))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.close_on_train_end:
            self.tracker.close()
