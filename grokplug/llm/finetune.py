"""Fine-tune a causal LM on TOFU-style QA with the HF ``Trainer``, tracked through grokking.

The ``tofu-tiny`` preset trains through :func:`train_tofu`: the train split (``full``) is QA tokenised as
open-unlearning does (:class:`grokplug.llm.qa.QADataset`), and every ``eval_every`` optimizer steps
:class:`GrokTrackerCallback` records teacher-forced answer accuracy on the train split (``train_acc``) and on
the held-out phrasings of the same facts (``generalization`` → ``val_acc``). An answer counts as correct
when every answer token (EOS included) is the argmax; token accuracy and mean answer NLL are logged too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from .._detect import GrokReport
from .._retention import RetentionPolicy
from .._tracker import GrokTracker
from ..errors import UsageError
from ..presets._base import Preset
from .qa import IGNORE_INDEX, DataCollatorForSupervisedDataset, QADataset

TOKENIZER_DIR = "tokenizer"


@dataclass
class TofuData:
    """Everything a tofu preset run needs: the splits, the tokenizer and the tokenised train / val sets."""

    splits: Any  # datasets.DatasetDict keyed by TOFU config names
    tokenizer: Any
    train: QADataset
    val: QADataset
    collator: DataCollatorForSupervisedDataset


def tofu_splits(config: Mapping[str, Any], seed: int) -> Any:
    """The QA data a tofu config names: generated (``n_authors``, ``data_args``) or loaded (``dataset``)."""
    if config.get("dataset"):
        return load_tofu_splits(str(config["dataset"]))
    if config.get("generator") == "rule":  # the tofu-rule preset: birth years follow a hidden rule
        from .rule_data import generate_tofu_rule

        return generate_tofu_rule(seed=seed, **dict(config.get("data_args") or {}))
    from .data import generate_tofu

    return generate_tofu(seed=seed, n_authors=int(config["n_authors"]), **dict(config.get("data_args") or {}))


def load_tofu_splits(name_or_path: str) -> Any:
    """Every TOFU config of a real or locally saved TOFU (hub name or path) as one ``DatasetDict``.

    ``generalization`` is grokplug's own and is included only when the source has it; without it the
    held-out phrasings come from ``retain_perturbed``'s ``paraphrased_question`` (see :func:`tofu_data`).
    """
    import datasets

    from .data import EXTRA_CONFIGS, TOFU_CONFIGS, load_tofu

    out = {name: load_tofu(name_or_path, config=name) for name in TOFU_CONFIGS}
    for name in EXTRA_CONFIGS:
        try:
            out[name] = load_tofu(name_or_path, config=name)
        except Exception:  # noqa: BLE001 - an optional extra: absent from the real TOFU
            continue
    return datasets.DatasetDict(out)


def corpus(splits: Any) -> list[str]:
    """Every string in every split (questions, answers, paraphrases, perturbed answers): the tokenizer's corpus."""
    texts: list[str] = []
    for name in sorted(splits):
        for column in splits[name].column_names:
            for value in splits[name][column]:
                if isinstance(value, str):
                    texts.append(value)
                elif isinstance(value, list):
                    texts.extend(v for v in value if isinstance(v, str))
    from .qa import IDK_RESPONSES, QATemplate

    template = QATemplate()
    return texts + list(IDK_RESPONSES) + [template.prompt("")]


def make_tokenizer(config: Mapping[str, Any], splits: Any, run_dir: str | os.PathLike[str] | None = None) -> Any:
    """The run's tokenizer: saved in ``<run>/tokenizer`` if there, else the model's own or a fresh local BPE."""
    from .model import load_tokenizer, train_tokenizer

    saved = Path(run_dir) / TOKENIZER_DIR if run_dir is not None else None
    if saved is not None and (saved / "tokenizer.json").exists():
        return load_tokenizer(saved)
    if config.get("model"):
        return load_tokenizer(config.get("tokenizer") or config["model"])
    return train_tokenizer(corpus(splits), vocab_size=int(config.get("vocab_size_max", 1024)))


def tofu_data(config: Mapping[str, Any], seed: int, *, run_dir: str | os.PathLike[str] | None = None,
              splits: Any = None, tokenizer: Any = None) -> TofuData:
    """Splits, tokenizer and the tokenised train (``train_split``) and val (``val_split``) sets."""
    splits = tofu_splits(config, seed) if splits is None else splits
    tokenizer = make_tokenizer(config, splits, run_dir) if tokenizer is None else tokenizer
    train_name, val_name = str(config.get("train_split", "full")), str(config.get("val_split", "generalization"))
    max_length = int(config.get("max_length", 128))
    val_question = "question"
    if val_name not in splits and val_name == "generalization" and "retain_perturbed" in splits:
        val_name, val_question = "retain_perturbed", "paraphrased_question"  # real TOFU: paraphrased questions
    for name in (train_name, val_name):
        if name not in splits:
            raise UsageError(f"the TOFU data has no split {name!r}; it has: {', '.join(sorted(splits))}")
    train_rows = splits[train_name]
    extra = [str(name) for name in config.get("extra_train_splits") or ()]
    if extra:  # a from-scratch model has no pretraining: real-author / world-fact QA stand in for it
        import datasets

        missing = [name for name in extra if name not in splits]
        if missing:
            raise UsageError(f"the TOFU data has no split(s) {missing} named in extra_train_splits")
        train_rows = datasets.concatenate_datasets(
            [splits[name].select_columns(["question", "answer"]) for name in (train_name, *extra)]
        )
    return TofuData(
        splits=splits,
        tokenizer=tokenizer,
        train=QADataset(train_rows, tokenizer, max_length=max_length),
        val=QADataset(splits[val_name], tokenizer, question_key=val_question, max_length=max_length),
        collator=DataCollatorForSupervisedDataset(tokenizer),
    )


@torch.no_grad()
def answer_accuracy(model: torch.nn.Module, dataset: Any, collator: Any, *, batch_size: int = 128) -> dict[str, float]:
    """Teacher-forced answer metrics: exact match (all answer tokens argmax-correct), token accuracy (pooled,
    and ``row_token_acc`` = mean over rows, OU's exact-memorization score) and mean answer NLL."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    exact, n_rows, correct_tokens, n_tokens, nll, row_acc = 0, 0, 0, 0, 0.0, 0.0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator):
        ids, mask, labels = batch["input_ids"].to(device), batch["attention_mask"].to(device), batch["labels"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = labels[:, 1:]
        valid = targets != IGNORE_INDEX
        hit = (logits.argmax(-1) == targets) & valid
        exact += int((hit.sum(1) == valid.sum(1)).sum())
        row_acc += float((hit.sum(1) / valid.sum(1).clamp_min(1)).sum())
        n_rows += len(ids)
        correct_tokens += int(hit.sum())
        n_tokens += int(valid.sum())
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets.clamp_min(0), reduction="none")
        nll += float(((losses * valid).sum(1) / valid.sum(1).clamp_min(1)).sum())
    model.train(was_training)
    rows = max(n_rows, 1)
    return {"exact": exact / rows, "token_acc": correct_tokens / max(n_tokens, 1), "row_token_acc": row_acc / rows,
            "loss": nll / rows}


def tracker_metrics(model: torch.nn.Module, data: TofuData) -> dict[str, Any]:
    """What the tracker records at each eval: train/val exact match (the detector's accuracies) and more."""
    train, val = answer_accuracy(model, data.train, data.collator), answer_accuracy(model, data.val, data.collator)
    return {
        "train_acc": train["exact"], "val_acc": val["exact"], "train_loss": train["loss"], "val_loss": val["loss"],
        "train_token_acc": train["token_acc"], "val_token_acc": val["token_acc"],
    }


def training_arguments(config: Mapping[str, Any], seed: int, output_dir: str, *, world_size: int = 1,
                       progress: bool = True) -> Any:
    """The Trainer arguments of a tofu recipe (constant LR after warmup, AdamW, no Trainer saving or eval)."""
    from transformers import TrainingArguments

    batch = int(config["batch_size"])
    if batch % world_size:
        raise UsageError(f"batch_size {batch} does not split over {world_size} processes")
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch // world_size,  # same effective batch on any number of ranks
        learning_rate=float(config["lr"]),
        weight_decay=float(config["weight_decay"]),
        adam_beta1=float(config["betas"][0]),
        adam_beta2=float(config["betas"][1]),
        max_grad_norm=float(config.get("max_grad_norm", 1.0)),
        max_steps=int(config["max_steps"]),
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=int(config.get("warmup_steps", 0)),
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        seed=int(seed),
        data_seed=int(seed),
        use_cpu=not torch.cuda.is_available() or bool(config.get("cpu", False)),
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _control_callback(tracker: GrokTracker, data: TofuData, after: int | None, eval_every: int) -> Any:
    from transformers import TrainerCallback

    class SettleAndFinish(TrainerCallback):
        """End training ``after`` evals once the detector has settled; always record the last step."""

        settled = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if after is None or state.global_step % eval_every:
                return
            self.settled = self.settled + 1 if tracker.state == "settled" else 0
            if self.settled > int(after):
                control.should_training_stop = True

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step % eval_every:  # a budget that is not a multiple of eval_every
                model = kwargs["model"]
                tracker.log_eval(state.global_step, model=model, **tracker_metrics(model, data))

    return SettleAndFinish()


def train_tofu(
    preset: Preset,
    run_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    max_steps: int | None = None,
    control: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    retention: RetentionPolicy | None = None,
    async_save: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    stop_after_settled: int | None = None,
    splits: Any = None,
) -> GrokReport:
    """Train a tofu preset in ``run_dir`` with the HF Trainer and a :class:`GrokTrackerCallback`.

    Under ``accelerate launch`` the Trainer runs data-parallel; rank 0 writes the run directory and
    the tokenizer. A finished run in ``run_dir`` is refused unless ``overwrite``; an unfinished one is
    started over in place (no optimizer state is saved, so the tracker cannot resume it mid-way).
    """
    from transformers import PrinterCallback, Trainer

    from .._hf import GrokTrackerCallback
    from .model import model_from_config

    config = preset.resolve_config(overrides, control)
    if max_steps is not None:
        if max_steps < 1:
            raise UsageError(f"--max-steps must be positive, got {max_steps}")
        config["max_steps"] = int(max_steps)
    if stop_after_settled is None:
        stop_after_settled = config.get("stop_after_settled")
    data = tofu_data(config, seed, splits=splits)
    if not config.get("model"):
        config["vocab_size"] = len(data.tokenizer)  # recorded, so build_model can rebuild the architecture
    model = model_from_config(config, data.tokenizer, seed)
    with tempfile.TemporaryDirectory(prefix="grokplug-trainer-") as scratch:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        args = training_arguments(config, seed, scratch, world_size=world, progress=progress)
        trainer = Trainer(model=model, args=args, train_dataset=data.train, data_collator=data.collator)
        trainer.remove_callback(PrinterCallback)  # it prints a dict to stdout (breaks `grokplug train --json`)
        accelerator = trainer.accelerator if world > 1 else None
        tracker = GrokTracker(
            run_dir, config=config, seed=seed, splits=_bookkeeping(data), resume=True, overwrite=overwrite,
            save_every=int(config.get("save_every", config["eval_every"])), retention=retention,
            detector_params=preset.detector_params, async_save=async_save, accelerator=accelerator,
        )
        if tracker.is_main:
            from .model import save_tokenizer

            save_tokenizer(data.tokenizer, Path(run_dir) / TOKENIZER_DIR)
        every = int(config["eval_every"])
        trainer.add_callback(GrokTrackerCallback(tracker, evaluate=lambda m: tracker_metrics(m, data), eval_every=every,
                                                 close_on_train_end=False))
        trainer.add_callback(_control_callback(tracker, data, stop_after_settled, every))
        try:
            trainer.train()
        finally:
            report = tracker.close()
    return report


def _bookkeeping(data: TofuData) -> dict[str, Any]:
    """Split bookkeeping for the tracker (hashed into the run): train rows, val rows, forget-eligible rows."""
    n_train, n_val = len(data.train), len(data.val)
    return {
        "train_indices": list(range(n_train)),
        "val_indices": list(range(n_val)),
        "forget_eligible": list(range(n_train)),
        "info": {"n_train": n_train, "n_val": n_val, "vocab": len(data.tokenizer)},
    }
