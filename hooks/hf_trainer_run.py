"""Built-in provider: θ_pre / θ_grok from an existing HF Trainer ``output_dir``, without retraining.

Reads ``trainer_state.json`` (the output dir's own, else the latest ``checkpoint-*/trainer_state.json``):
its ``log_history`` gives the eval records, and the ``checkpoint-<step>/model.safetensors`` folders are
the checkpoints. The detector needs a train and a validation accuracy per eval:

* ``val_metric`` (default: the first of ``eval_val_accuracy``, ``eval_accuracy`` present), e.g. the
  ``eval_accuracy`` your ``compute_metrics`` returns;
* ``train_metric`` (default: ``eval_train_accuracy``, ``train_accuracy``), which an
  ``eval_dataset={"train": ..., "val": ...}`` produces.

Options (``request_checkpoint(out_dir, "grok", val_metric="eval_accuracy")``, CLI ``--option``):
``val_metric``, ``train_metric``, ``nearest`` (accept the nearest saved checkpoint when the run saved
none at θ) and ``detector`` (a dict of detector parameters). The directory is only read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grokplug._types import CheckpointRef, CheckpointRequest
from grokplug.errors import CheckpointError, UsageError
from grokplug.external import RunHistory, check_options, resolve_in_history

from . import hookimpl

KIND = "hf-trainer-output"
TRAINER_STATE = "trainer_state.json"
VAL_METRICS = ("eval_val_accuracy", "eval_accuracy")
TRAIN_METRICS = ("eval_train_accuracy", "train_accuracy")
OPTIONS = ("val_metric", "train_metric", "nearest", "detector")
# log_history keys that become extra fields of an eval record
_EXTRA = {"loss": "train_loss", "eval_val_loss": "val_loss", "eval_loss": "val_loss", "eval_train_loss": "train_loss"}


def checkpoint_folders(path: Path) -> dict[int, Path]:
    """``checkpoint-<step>`` folders by step."""
    out = {}
    for child in path.glob("checkpoint-*"):
        suffix = child.name.split("-", 1)[1]
        if child.is_dir() and suffix.isdigit():
            out[int(suffix)] = child
    return dict(sorted(out.items()))


def is_trainer_output(source: str) -> bool:
    """An HF Trainer output dir: a ``trainer_state.json`` here or in a checkpoint folder, and not a grokplug run."""
    path = Path(source)
    if "://" in source or not path.is_dir() or (path / "manifest.json").is_file():
        return False
    return (path / TRAINER_STATE).is_file() or any((f / TRAINER_STATE).is_file() for f in checkpoint_folders(path).values())


def _state_file(path: Path) -> Path:
    if (path / TRAINER_STATE).is_file():
        return path / TRAINER_STATE
    folders = [f for f in checkpoint_folders(path).values() if (f / TRAINER_STATE).is_file()]
    return folders[-1] / TRAINER_STATE  # the latest checkpoint has the longest log_history


def _pick(name: Any, candidates: tuple[str, ...], seen: set[str], what: str, path: Path) -> str:
    if name:
        if name not in seen:
            raise UsageError(f"{path}'s log_history has no {what} metric {name!r}; it has: {', '.join(sorted(seen))}")
        return str(name)
    for candidate in candidates:
        if candidate in seen:
            return candidate
    hint = (
        "evaluate on a train subset too (eval_dataset={'train': ..., 'val': ...} logs eval_train_accuracy), or "
        if what == "train" else ""
    )  # fmt: skip
    raise UsageError(
        f"{path}'s log_history has no {what} accuracy ({' or '.join(candidates)}); it has: "
        f"{', '.join(sorted(seen)) or 'nothing'}; {hint}name yours with {what}_metric=NAME"
    )


def read_trainer_output(source: str, options: dict[str, Any]) -> RunHistory:
    """The eval history and saved checkpoints of an HF Trainer output directory (only read)."""
    check_options(options, OPTIONS, "an HF Trainer output directory")
    path = Path(source)
    state_file = _state_file(path)
    try:
        log_history = json.loads(state_file.read_text()).get("log_history", [])
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"cannot read {state_file}: {exc}") from None
    merged: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            merged.setdefault(entry["step"], {}).update(entry)
    seen = {k for entry in merged.values() for k in entry if k not in ("step", "epoch")}
    val_key = _pick(options.get("val_metric"), VAL_METRICS, seen, "val", state_file)
    train_key = _pick(options.get("train_metric"), TRAIN_METRICS, seen, "train", state_file)
    history = []
    for step, entry in sorted(merged.items()):
        if val_key in entry and train_key in entry:
            record = {"step": step, "train_acc": float(entry[train_key]), "val_acc": float(entry[val_key])}
            record.update({field: float(entry[k]) for k, field in _EXTRA.items() if k in entry and field not in record})
            history.append(record)
    folders = checkpoint_folders(path)
    saved = [s for s, f in folders.items() if (f / "model.safetensors").is_file()]
    notes = [f"metrics: train_acc = {train_key}, val_acc = {val_key} (from {state_file.relative_to(path)})"]
    unsafe = [s for s, f in folders.items() if s not in saved and any(f.glob("*.bin"))]
    if unsafe:
        notes.append(f"checkpoints without safetensors weights are ignored (pickle is never loaded): steps {unsafe}")
    sharded = [s for s, f in folders.items() if s not in saved and (f / "model.safetensors.index.json").is_file()]
    if sharded:
        notes.append(f"sharded checkpoints are not served yet: steps {sharded}")
    detector = options.get("detector") or {}
    if not isinstance(detector, dict):
        raise UsageError(f"option detector must be a dict of detector parameters, not {detector!r}")
    return RunHistory(source=str(source), kind=KIND, history=history, checkpoint_steps=saved,
                      detector_params=dict(detector), notes=notes)  # fmt: skip


@hookimpl
def grokplug_read_history(request: CheckpointRequest) -> RunHistory | None:
    if not is_trainer_output(str(request.source)):
        return None
    return read_trainer_output(str(request.source), dict(request.options))


@hookimpl
def grokplug_resolve_checkpoint(request: CheckpointRequest) -> CheckpointRef | None:
    source = str(request.source)
    if not is_trainer_output(source):
        return None
    run = read_trainer_output(source, dict(request.options))
    folders = checkpoint_folders(Path(source))

    def weights_of(step: int) -> Path:
        weights = folders[step] / "model.safetensors"
        if not weights.is_file():
            raise CheckpointError(f"{folders[step]} has no model.safetensors")
        return weights

    return resolve_in_history(run, request, weights_of, provider=KIND)
