"""A tofu run's data for unlearning, and its retain ("oracle") model.

:class:`LLMRunData` holds a run's TOFU splits, tokenizer and the QA datasets of one forget split;
``forget_acc`` / ``retain_acc`` are teacher-forced answer-token accuracies (OU's exact-memorization
score, mean over rows), ``gen_acc`` the same on held-out phrasings of retain authors' facts.
:func:`retain_only_reference` trains the preset on the retain split with the run's recipe once (kept under
``<run>-reference/<retain split>/``, beside the run, never inside it): its TOFU evaluation feeds ``forget_quality``/``privleak`` and its
forget accuracy is the ``"retrain"`` target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._accelerate import is_main_process
from .._atomic import sha256_json
from .._deprecation import deprecated_alias
from .._resolve import Source, build_model, load_checkpoint, run_dir_of
from ..errors import UsageError
from .data import retain_author_count

__all__ = ["LLMRunData", "LLMSplit", "forget_split_of", "llm_run_data", "reference_root", "retain_only_reference", "retain_reference"]

#: where an older grokplug cached the retain model: inside the run (still read, never written)
LEGACY_REFERENCE_DIR = "reference"


_FORGET_SPLITS = {0.01: "forget01", 0.05: "forget05", 0.1: "forget10"}


def forget_split_of(options: Mapping[str, Any]) -> str:
    """The forget split named by ``forget_rate`` (0.01/0.05/0.1) or ``forget_split`` (default ``forget10``)."""
    if options.get("forget_rate") is not None:
        rate = float(options["forget_rate"])
        if rate not in _FORGET_SPLITS:
            raise UsageError(f"TOFU-style runs have forget rates 0.01, 0.05 and 0.1 (forget01/05/10), not {rate:g}")
        return _FORGET_SPLITS[rate]
    return str(options.get("forget_split") or "forget10")


def reference_root(run_path: Any) -> Path:
    """Where a run's retain model and shared start evaluations are cached: ``<run>-reference/`` beside the run.

    Never inside the run: the source run is only ever read (a read-only or shared run dir stays usable).
    """
    path = Path(run_path).resolve()
    return path.parent / f"{path.name}-reference"


class LLMSplit:
    """The forget/retain split of a tofu run as compare pairs it: names and content hashes."""

    def __init__(self, forget_split: str, retain_split: str, forget_rows: Any, retain_rows: Any) -> None:
        self.forget_split, self.retain_split = forget_split, retain_split
        self.forget_sha256 = sha256_json([dict(r) for r in forget_rows])
        self.retain_sha256 = sha256_json([dict(r) for r in retain_rows])
        self.n_forget, self.n_retain = len(forget_rows), len(retain_rows)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tofu", "forget_split": self.forget_split, "retain_split": self.retain_split,
                "forget_sha256": self.forget_sha256, "retain_sha256": self.retain_sha256,
                "n_forget": self.n_forget, "n_retain": self.n_retain}


class LLMRunData:
    """A tofu run's splits, tokenizer and the datasets one forget split needs."""

    def __init__(self, source: Source, forget_split: str = "forget10", *, splits: Any = None) -> None:
        from .finetune import TOKENIZER_DIR, make_tokenizer, tofu_splits
        from .qa import DataCollatorForSupervisedDataset, QADataset

        run = run_dir_of(source)
        self.run, self.config = run, dict(run.config)
        if not str(forget_split).startswith("forget") or not str(forget_split)[6:].isdigit():
            raise UsageError(f"forget_split must be forget01, forget05 or forget10, not {forget_split!r}")
        self.forget_split = str(forget_split)
        self.retain_split = f"retain{100 - int(self.forget_split[6:])}"
        self.splits = tofu_splits(self.config, run.seed or 0) if splits is None else splits
        self.tokenizer = make_tokenizer(self.config, self.splits, run.path if (run.path / TOKENIZER_DIR).exists() else None)
        max_length = int(self.config.get("max_length", 128))
        self.max_length = max_length
        self.forget = QADataset(self.splits[self.forget_split], self.tokenizer, max_length=max_length)
        self.retain = QADataset(self.splits[self.retain_split], self.tokenizer, max_length=max_length)
        self.collator = DataCollatorForSupervisedDataset(self.tokenizer)
        self.split = LLMSplit(self.forget_split, self.retain_split, self.splits[self.forget_split],
                              self.splits[self.retain_split])
        self.generalization = None
        if "generalization" in self.splits:  # held-out phrasings of retain authors' facts
            gen = self.splits["generalization"]
            n_retain_authors = retain_author_count(self.splits, self.forget_split)
            keep = [i for i, a in enumerate(gen["author_index"]) if a < n_retain_authors]
            self.generalization = QADataset(gen.select(keep), self.tokenizer, max_length=max_length)

    def forget_dataset(self, item: str, seed: int) -> Any:
        """The forget items a method needs: plain QA, or ``{"original","alternate"}`` IDK pairs (IdkDPO)."""
        if item == "idk":
            from .qa import IdkQADataset

            return IdkQADataset(self.splits[self.forget_split], self.tokenizer, max_length=self.max_length, seed=seed)
        return self.forget

    def score(self, model: torch.nn.Module, which: str, limit: int | None = None) -> float:
        """Teacher-forced answer-token accuracy (mean over rows) on ``forget``, ``retain`` or ``generalization``."""
        from torch.utils.data import Subset

        from .finetune import answer_accuracy

        dataset = getattr(self, which)
        if limit is not None and len(dataset) > limit:
            dataset = Subset(dataset, range(limit))  # the monitor's cheap proxy: the first rows
        return float(answer_accuracy(model, dataset, self.collator)["row_token_acc"])

    def scores(self, model: torch.nn.Module) -> dict[str, float]:
        """``forget_acc``, ``retain_acc`` and (generated data) ``gen_acc`` on the full sets."""
        out = {"forget_acc": self.score(model, "forget"), "retain_acc": self.score(model, "retain")}
        if self.generalization is not None:
            out["gen_acc"] = self.score(model, "generalization")
        return out


def llm_run_data(source: Source, forget_split: str = "forget10") -> LLMRunData:
    """The splits, tokenizer and QA datasets of a tofu run for one forget split (``grokplug.run_data`` for LLM runs)."""
    return LLMRunData(source, forget_split)


def retain_only_reference(source: Source, forget_split: str = "forget10", *, data: LLMRunData | None = None,
                     progress: bool = False, eval_kwargs: Mapping[str, Any] | None = None,
                     train: bool = True) -> dict[str, Any] | None:
    """The retain ("oracle") model of a tofu run: trained once with the run's recipe on the retain split.

    Cached in ``<run>-reference/<retain split>/`` (a tracked run of its own, see :func:`reference_root`) with its TOFU evaluation
    for ``forget_split`` in ``tofu_eval-<forget split>.json``. Returns that evaluation plus its
    ``forget_acc``/``retain_acc``/``gen_acc`` scores (under ``"scores"``). With ``train=False`` a
    missing retain model is not trained: the result is ``None`` (a finished one is still evaluated).
    """
    from .._atomic import write_json_atomic
    from .._rundir import RunDir
    from .._train import train_preset
    from .evaluation import evaluate_tofu

    data = data or LLMRunData(source, forget_split)
    run = data.run
    ref_dir = reference_root(run.path) / data.retain_split
    legacy = run.path / LEGACY_REFERENCE_DIR / data.retain_split
    if not RunDir.exists(ref_dir) and RunDir.exists(legacy) and RunDir(legacy).status == "finished":
        ref_dir = legacy  # a retain model an older version trained inside the run: read it, write nothing there
    cached = ref_dir / f"tofu_eval-{data.forget_split}.json"
    wanted = {"max_length": data.max_length, **dict(eval_kwargs or {})}
    if cached.is_file():
        stored = json.loads(cached.read_text())
        if stored.get("eval_kwargs") == json.loads(json.dumps(wanted)):
            return stored
    if not (RunDir.exists(ref_dir) and RunDir(ref_dir).status == "finished"):
        if not train:
            return None
        overrides = {k: v for k, v in data.config.items() if k not in ("preset", "control", "vocab_size")}
        overrides.update(train_split=data.retain_split, stop_after_settled=None)
        train_preset(str(data.config["preset"]), ref_dir, seed=run.seed or 0, overrides=overrides,
                     overwrite=RunDir.exists(ref_dir), progress=progress)
    model = build_model(ref_dir)
    load_checkpoint(model, ref_dir, "final")
    result = evaluate_tofu(model, data.tokenizer, data.splits, forget_split=data.forget_split, **wanted)
    result["scores"] = data.scores(model)
    result["eval_kwargs"] = wanted
    if is_main_process() and ref_dir != legacy:
        write_json_atomic(cached, result)
    return result


retain_reference = deprecated_alias(retain_only_reference, "grokplug.llm.retain_reference", "grokplug.llm.retain_only_reference")
