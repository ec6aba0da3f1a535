"""A real HF Trainer output directory for the bring-your-own-run tests: (a + b) mod 59 learned by an
embedding MLP with the HF ``Trainer`` (full batch, AdamW lr 1e-2, weight decay 1), evaluated on a train
and a validation split every ``eval_steps`` (metrics ``eval_train_acc`` / ``eval_val_acc``), a
``checkpoint-<step>`` folder every ``save_steps``. A :class:`grokplug.GrokTrackerCallback` fed by the
same evaluations writes a grokplug run beside it, which the tests use as the independent reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import grokplug
from grokplug.presets.modular import modular_pairs, split_pairs

P = 59


class PairDataset(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.y[i]}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        # one pre-batched item per batch (DataLoader's batched fetch): collating 1 740 items per step
        # would cost more than the step itself
        idx = torch.as_tensor(indices)
        return [{"input_ids": self.x[idx], "labels": self.y[idx]}]


def first_item(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return items[0]


class ModularClassifier(nn.Module):
    """``embed(a) ‖ embed(b)`` → Linear → ReLU → Linear, returning the ``loss`` the Trainer minimises."""

    def __init__(self, p: int = P, dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, p))

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        logits = self.mlp(self.embed(input_ids).flatten(1))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def _accuracy(pred: Any) -> dict[str, float]:
    logits, labels = pred.predictions, pred.label_ids
    return {"acc": float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())}


def train_hf_run(out_dir: Path, tracked_dir: Path, *, max_steps: int = 1500, eval_steps: int = 10,
                 save_steps: int = 10, stop_after_settled: int | None = 3) -> tuple[Any, Any]:
    """Train with the HF Trainer into ``out_dir``; returns (trainer, the GrokTrackerCallback)."""
    from transformers import PrinterCallback, Trainer, TrainingArguments

    torch.manual_seed(0)
    x, y = modular_pairs(P)
    train_idx, val_idx = split_pairs(P, 0.5, 0)
    train, val = PairDataset(x[train_idx], y[train_idx]), PairDataset(x[val_idx], y[val_idx])
    args = TrainingArguments(
        output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=len(train),
        per_device_eval_batch_size=4096, learning_rate=1e-2, weight_decay=1.0, adam_beta2=0.98,
        lr_scheduler_type="constant", warmup_steps=0, eval_strategy="steps", eval_steps=eval_steps,
        save_strategy="steps", save_steps=save_steps, save_only_model=True, logging_steps=eval_steps,
        report_to="none", disable_tqdm=True, use_cpu=True, seed=0, dataloader_num_workers=0,
    )  # fmt: skip
    tracker = grokplug.GrokTracker(tracked_dir, config={"task": "hf-modular"}, seed=0, save_every=eval_steps,
                                   retention=grokplug.RetentionPolicy.dense(), async_save=False)
    callback = grokplug.GrokTrackerCallback(
        tracker, metric_keys={"eval_train_acc": "train_acc", "eval_val_acc": "val_acc"},
        stop_after_settled=stop_after_settled,
    )  # fmt: skip
    trainer = Trainer(model=ModularClassifier(), args=args, train_dataset=train, data_collator=first_item,
                      eval_dataset={"train": train, "val": val}, compute_metrics=_accuracy, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # a dict printed per log line
    trainer.train()
    trainer.save_state()  # the output dir's own trainer_state.json, as a user's script usually writes
    return trainer, callback
