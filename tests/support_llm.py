"""Tiny LLM fixtures for the LLM method / Trainer adapter tests: a 2-layer random Llama and hand-built batches."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

VOCAB = 64
PAD, EOS = 0, 1


def tiny_llama(seed: int = 0) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=2,
        tie_word_embeddings=False,
    )  # fmt: skip
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config)


def qa_item(gen: torch.Generator, length: int = 8, prompt: int = 3) -> dict[str, torch.Tensor]:
    """One QADataset-shaped item: prompt positions labelled -100, answer ends with EOS."""
    ids = torch.randint(3, VOCAB, (length,), generator=gen)
    ids[-1] = EOS
    labels = ids.clone()
    labels[:prompt] = -100
    return {"input_ids": ids, "labels": labels, "attention_mask": torch.ones(length, dtype=torch.long)}


def batch(gen: torch.Generator, n: int = 2, length: int = 8, prompt: int = 3) -> dict[str, torch.Tensor]:
    items = [qa_item(gen, length, prompt) for _ in range(n)]
    return {k: torch.stack([i[k] for i in items]) for k in ("input_ids", "labels", "attention_mask")}


class ListDataset(Dataset):
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def forget_retain_dataset(n: int = 8, seed: int = 0, idk: bool = False) -> ListDataset:
    """ForgetRetainDataset-shaped items (``{"forget": {original, alternate}}`` with ``idk``); varied lengths."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        forget: Any = qa_item(gen, 6 + i % 3)
        if idk:
            forget = {"original": forget, "alternate": qa_item(gen, 5 + i % 2)}
        items.append({"forget": forget, "retain": qa_item(gen, 7 + i % 2)})
    return ListDataset(items)


class StubTokenizer:
    pad_token_id = PAD
    eos_token_id = EOS


def collator() -> Any:
    from grokplug.llm.qa import DataCollatorForSupervisedDataset

    return DataCollatorForSupervisedDataset(StubTokenizer())


def real_tokenizer() -> Any:
    """A real ``PreTrainedTokenizerFast`` over the tiny vocabulary (word level, offline)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "<eos>": EOS, "<unk>": 2, **{f"t{i}": i for i in range(3, VOCAB)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def answer_nll(model: Any, dataset: Any, *, key: str = "forget") -> float:
    """Mean per-token NLL of the answers of ``dataset``'s ``key`` items (a forget/retain score)."""
    coll = collator()
    b = coll([dataset[i][key] for i in range(len(dataset))])
    with torch.no_grad():
        return float(
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
        )


def answer_prob(model: Any, dataset: Any, *, key: str = "forget") -> float:
    """exp(-mean NLL): a forget score where lower = more forgotten."""
    return float(torch.exp(torch.tensor(-answer_nll(model, dataset, key=key))))


#: tofu-tiny shrunk to seconds: 2 authors (40 QA), a 1-layer model, small evaluation splits
TOFU_TINY_TEST = {
    "n_authors": 2,
    "data_args": {"n_real_authors": 4, "n_world_facts": 4, "generalization_size": 16},
    "hidden": 32, "layers": 1, "heads": 2, "intermediate": 64,
    "lr": 1e-2, "batch_size": 8, "warmup_steps": 0, "max_steps": 75, "eval_every": 10, "save_every": 10,
}
#: TOFU evaluation settings small enough for the fast suite
TOFU_EVAL_TEST = {"max_new_tokens": 12, "batch_size": 16}
