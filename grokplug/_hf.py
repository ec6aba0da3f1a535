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

    ``stop_after_settled=N`` ends training (``control.should_training_stop``) once the online
    detector has been ``settled`` on θ_grok for more than ``N`` consecutive evals, as
    ``grokplug train`` does for the presets, so steps after grokking are not paid for.
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
        stop_after_settled: int | None = None,
    ) -> None:
        if stop_after_settled is not None and int(stop_after_settled) < 0:
            from .errors import UsageError

            raise UsageError(f"stop_after_settled must be >= 0 evals, got {stop_after_settled}")
        self.tracker = tracker
        self.evaluate = evaluate
        self.eval_every = eval_every
        self.metric_keys = dict(metric_keys)
        self.save_optimizer = save_optimizer
        self.close_on_train_end = close_on_train_end
        self._pending: dict[int, dict[str, float]] = {}
        self.stop_after_settled = stop_after_settled
        self.settled_evals = 0
        #: the step at which this callback asked the Trainer to stop (``None``: it did not)
        self.stopped_at: int | None = None

    def _log(self, step: int, metrics: Mapping[str, float], model: Any, optimizer: Any,
             control: TrainerControl | None = None) -> None:  # fmt: skip
        self.tracker.log_eval(step, model=model, optimizer=optimizer if self.save_optimizer else None, **metrics)
        self.settled_evals = self.settled_evals + 1 if self.tracker.state == "settled" else 0
        if control is not None and self.stop_after_settled is not None and self.settled_evals > self.stop_after_settled:
            control.should_training_stop = True
            self.stopped_at = step

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
            self._log(state.global_step, self.evaluate(kwargs["model"]), kwargs["model"], kwargs.get("optimizer"), control)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.evaluate is not None:
            return
        metrics: Mapping[str, float] = kwargs["metrics"]  # the Trainer passes them by keyword
        # with a dict eval_dataset the Trainer calls this once per split: collect until both accuracies are in
        pending = self._pending.setdefault(state.global_step, {})
        pending.update({field: float(metrics[key]) for key, field in self.metric_keys.items() if key in metrics})
        if "train_acc" in pending and "val_acc" in pending:
            self._log(state.global_step, self._pending.pop(state.global_step), kwargs["model"], kwargs.get("optimizer"),
                      control)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.close_on_train_end:
            self.tracker.close()
