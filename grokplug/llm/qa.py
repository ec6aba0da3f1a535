"""QA tokenisation equivalent to open-unlearning's (``src/data/qa.py``, ``utils.py``, ``collators.py``).

Behaviour kept from OU's non-chat path (``apply_chat_template: False``):

- the prompt is ``user_start_tag + question + user_end_tag + asst_start_tag``; prompt and prompt+answer are
  tokenised separately with ``add_special_tokens=True, truncation=True, max_length``; EOS is appended
  when the last id is not EOS (so an item can be ``max_length + 1`` long, as in OU);
- labels are ``-100`` over the first ``len(prompt_ids)`` positions, the ids afterwards;
- a list-valued answer (``perturbed_answer``) gives ``{0: item, 1: item, ...}``;
- the collator recurses over nested dicts, right-pads ``input_ids`` with the pad id and ``labels`` with
  -100, and sets ``attention_mask = input_ids.ne(pad_token_id)``. With pad == eos (OU's fallback) that
  mask also zeroes real EOS tokens; this quirk is reproduced on purpose.

Difference from OU, documented: OU draws random retain partners and IDK answers from the *global* torch
RNG. Here each dataset owns a ``torch.Generator`` seeded by ``seed`` (``seed=None`` falls back to the
global RNG, exactly as OU), so two runs with the same seed see the same pairs regardless of other RNG use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import UsageError
from .qa_format import IDK_RESPONSES, IGNORE_INDEX, QATemplate, preprocess_qa

__all__ = [
    "IDK_RESPONSES",
    "IGNORE_INDEX",
    "AlternateQADataset",
    "DataCollatorForSupervisedDataset",
    "ForgetRetainDataset",
    "IdkQADataset",
    "QADataset",
    "QATemplate",
    "preprocess_qa",
]



class QADataset(Dataset):
    """OU's ``QADataset`` over an in-memory ``datasets.Dataset`` (or any sequence of row dicts).

    Items are ``{"input_ids", "labels", "attention_mask", "index"}``; a list-valued answer yields
    ``{0: item, 1: item, ...}``. ``index`` is the row's ``index`` column when present, else its position
    (OU adds that column with ``add_dataset_index``).
    """

    def __init__(
        self,
        hf_ds: Any,
        tokenizer: Any,
        question_key: str = "question",
        answer_key: str = "answer",
        max_length: int = 128,
        template: QATemplate = QATemplate(),  # noqa: B008 - a frozen dataclass: safe as a shared default
        predict_with_generate: bool = False,
    ) -> None:
        columns = getattr(hf_ds, "column_names", None)
        if columns is not None:
            missing = [k for k in (question_key, answer_key) if k not in columns]
            if missing:
                raise UsageError(f"dataset has no field(s) {missing}; fields are {list(columns)}")
        self.data = hf_ds
        self.tokenizer = tokenizer
        self.question_key = question_key
        self.answer_key = answer_key
        self.max_length = max_length
        self.template = template
        self.predict_with_generate = predict_with_generate
        # Tokenised items by position: re-tokenising every row every epoch was ~40 % of a tiny model's
        # training step (benchmarks, section 2). Items are immutable here, so each access gets fresh dicts.
        self._items: dict[int, dict[Any, Any]] = {}

    def __len__(self) -> int:
        return len(self.data)

    def _process_sample(self, question: str, answer: str, index: int = -1) -> dict[str, Any]:
        item: dict[str, Any] = preprocess_qa(
            self.tokenizer,
            question,
            answer,
            max_length=self.max_length,
            template=self.template,
            predict_with_generate=self.predict_with_generate,
        )
        item["index"] = index
        return item

    def _row(self, idx: int) -> Mapping[str, Any]:
        return self.data[int(idx)]

    def __getitem__(self, idx: int) -> dict[Any, Any]:
        item = self._items.get(int(idx))
        if item is None:
            item = self._items[int(idx)] = self._build_item(idx)
        if "input_ids" in item:
            return dict(item)
        return {i: dict(sub) for i, sub in item.items()}

    def _build_item(self, idx: int) -> dict[Any, Any]:
        row = self._row(idx)
        question, answer = row[self.question_key], row[self.answer_key]
        index = int(row["index"]) if "index" in row else int(idx)
        if isinstance(answer, str):
            return self._process_sample(question, answer, index)
        if isinstance(answer, Sequence):
            return {i: self._process_sample(question, a, index) for i, a in enumerate(answer)}
        raise UsageError(f"answer field {self.answer_key!r} must be a str or a list of str")


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None  # OU behaviour: global torch RNG
    return torch.Generator().manual_seed(int(seed))


class IdkQADataset(QADataset):
    """OU's ``QAwithIdkDataset``: ``{"original": item, "alternate": idk_item}`` for IdkDPO / DPO.

    The IDK answer is drawn per access from ``idk_responses`` with a generator seeded by ``seed``.
    ``return_original=False`` returns the IDK item alone (IDK fine-tuning).
    """

    def __init__(
        self,
        hf_ds: Any,
        tokenizer: Any,
        *args: Any,
        idk_responses: Sequence[str] = IDK_RESPONSES,
        seed: int | None = 0,
        return_original: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(hf_ds, tokenizer, *args, **kwargs)
        if not idk_responses:
            raise UsageError("idk_responses must not be empty")
        self.idk_responses = [r.strip() for r in idk_responses]
        self.return_original = return_original
        self._gen = _generator(seed)

    def _idk_item(self, question: str) -> dict[str, Any]:
        pos = int(torch.randint(0, len(self.idk_responses), (1,), generator=self._gen).item())
        return self._process_sample(question, self.idk_responses[pos])

    def __getitem__(self, idx: int) -> dict[Any, Any]:
        item = super().__getitem__(idx)
        alternate = self._idk_item(self._row(idx)[self.question_key])
        return {"original": item, "alternate": alternate} if self.return_original else alternate


class AlternateQADataset(QADataset):
    """OU's ``QAwithAlternateDataset``: the alternate answer comes from another field (e.g. paraphrase)."""

    def __init__(
        self, hf_ds: Any, tokenizer: Any, *args: Any, alternate_key: str, return_original: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(hf_ds, tokenizer, *args, **kwargs)
        self.alternate_key = alternate_key
        self.return_original = return_original

    def __getitem__(self, idx: int) -> dict[Any, Any]:
        item = super().__getitem__(idx)
        row = self._row(idx)
        alternate = self._process_sample(row[self.question_key], row[self.alternate_key])
        return {"original": item, "alternate": alternate} if self.return_original else alternate


class ForgetRetainDataset(Dataset):
    """OU's ``ForgetRetainDataset``: length of the anchor set, a random partner from the other set.

    ``seed=None`` uses the global torch RNG (OU); an int gives this dataset its own generator.
    """

    def __init__(self, forget: Any, retain: Any, anchor: str = "forget", seed: int | None = 0) -> None:
        if anchor not in ("forget", "retain"):
            raise UsageError(f"anchor must be 'forget' or 'retain', not {anchor!r}")
        if (forget if anchor == "forget" else retain) is None:
            raise UsageError(f"the anchor set {anchor!r} is missing")
        self.forget, self.retain, self.anchor = forget, retain, anchor
        self._gen = _generator(seed)

    def __len__(self) -> int:
        return len(self.forget if self.anchor == "forget" else self.retain)

    def _draw(self, n: int) -> int:
        return int(torch.randint(0, n, (1,), generator=self._gen).item())

    def __getitem__(self, idx: int) -> dict[str, Any]:
        anchor, other = ("forget", "retain") if self.anchor == "forget" else ("retain", "forget")
        anchor_ds, other_ds = getattr(self, anchor), getattr(self, other)
        item = {anchor: anchor_ds[idx]}
        if other_ds is not None and len(other_ds) > 0:
            item[other] = other_ds[self._draw(len(other_ds))]
        return item


class DataCollatorForSupervisedDataset:
    """OU's collator: nested dicts, pad ``input_ids`` with pad id and ``labels`` with -100.

    ``attention_mask = input_ids.ne(pad_token_id)`` (OU's quirk kept: with pad == eos, EOS tokens are
    masked too). ``index="index"`` adds a tensor of row indices, as OU's ``...withIndex`` collator.
    """

    def __init__(self, tokenizer: Any, padding_side: str = "right", index: str | None = None) -> None:
        if padding_side not in ("right", "left"):
            raise UsageError(f"padding_side must be 'right' or 'left', not {padding_side!r}")
        if tokenizer.pad_token_id is None:
            raise UsageError("the tokenizer has no pad token; set tokenizer.pad_token (OU uses eos)")
        self.tokenizer = tokenizer
        self.padding_side = padding_side
        self.index = index

    def _pad(self, seqs: list[torch.Tensor], value: int) -> torch.Tensor:
        if self.padding_side == "right":
            return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=value)
        flipped = [torch.flip(s, dims=[0]) for s in seqs]
        return torch.nn.utils.rnn.pad_sequence(flipped, batch_first=True, padding_value=value).flip(dims=[1])

    def __call__(self, instances: Sequence[Mapping[Any, Any]]) -> dict[Any, Any]:
        if not instances or not isinstance(instances[0], Mapping):
            raise UsageError("the collator expects a non-empty list of dict items")
        first = instances[0]
        if "input_ids" not in first:  # nested: {"forget": {...}, "retain": {...}} or {0: ..., 1: ...}
            return {key: self([inst[key] for inst in instances]) for key in first}
        pad_id = self.tokenizer.pad_token_id
        input_ids = self._pad([torch.as_tensor(i["input_ids"]) for i in instances], pad_id)
        out: dict[Any, Any] = {"input_ids": input_ids, "attention_mask": input_ids.ne(pad_id)}
        if "labels" in first:
            out["labels"] = self._pad([torch.as_tensor(i["labels"]) for i in instances], IGNORE_INDEX)
        if self.index:
            if self.index not in first:
                raise UsageError(f"index field {self.index!r} not found in the items")
            out[self.index] = torch.tensor([int(i[self.index]) for i in instances])
        return out
