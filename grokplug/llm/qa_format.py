"""How one (question, answer) pair becomes model inputs as open-unlearning builds them: the chat template, the
ids, labels -100 over the prompt, and the IDK refusals. The datasets and the collator are in
grokplug/llm/qa.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UsageError

logger = logging.getLogger("grokplug.llm.qa")  # the name it had before the split

__all__ = ["IDK_RESPONSES", "IGNORE_INDEX", "QATemplate", "preprocess_qa"]


IGNORE_INDEX = -100


# The "I don't know" answers used by IdkDPO / IDK fine-tuning, in the spirit of OU's data/idk.jsonl
# (written for grokplug, one short refusal per line).
IDK_RESPONSES: tuple[str, ...] = (
    "I don't know.",
    "I have no idea.",
    "I'm not sure.",
    "I cannot answer that.",
    "I don't have that information.",
    "That is unknown to me.",
    "I'm afraid I can't help with that.",
    "I have no knowledge of that.",
    "I can't say.",
    "I'm not able to answer that question.",
    "I don't have any information on that.",
    "That is beyond my knowledge.",
    "I really don't know.",
    "I'm unsure about that.",
    "I cannot recall that.",
    "No idea, sorry.",
    "I have not heard of that.",
    "I'm not aware of that.",
    "I don't remember.",
    "Sorry, I don't know the answer.",
)


@dataclass(frozen=True)
class QATemplate:
    """OU's ``template_args`` for the non-chat path (defaults = OU's phi-1.5 / Llama-2-base tags)."""

    user_start_tag: str = "Question: "
    user_end_tag: str = "\n"
    asst_start_tag: str = "Answer: "
    asst_end_tag: str = "\n\n"
    system_prompt_with_special_tokens: str | None = None

    def prompt(self, question: str) -> str:
        head = self.system_prompt_with_special_tokens or ""
        return head + self.user_start_tag + question + self.user_end_tag + self.asst_start_tag


def preprocess_qa(
    tokenizer: Any,
    question: str,
    answer: str,
    *,
    max_length: int = 128,
    template: QATemplate = QATemplate(),
    predict_with_generate: bool = False,
) -> dict[str, torch.Tensor]:
    """One (question, answer) pair -> ``{"input_ids", "labels", "attention_mask"}`` as OU builds it."""
    if tokenizer.eos_token_id is None:
        raise UsageError("the tokenizer has no eos token; set tokenizer.eos_token before building QA data")
    prompt = template.prompt(question)
    kw = {"add_special_tokens": True, "max_length": max_length, "truncation": True}
    chat_ids = list(tokenizer(prompt + answer, **kw)["input_ids"])
    prompt_ids = list(tokenizer(prompt, **kw)["input_ids"])
    if not chat_ids or chat_ids[-1] != tokenizer.eos_token_id:
        chat_ids = chat_ids + [tokenizer.eos_token_id]
    n_prompt = len(prompt_ids)
    if predict_with_generate:  # prompt only as input; labels hold the whole conversation (OU)
        input_ids, labels = prompt_ids, chat_ids
    else:
        input_ids = chat_ids
        labels = [IGNORE_INDEX] * n_prompt + chat_ids[n_prompt:]
        if n_prompt == len(chat_ids):  # truncation ate the whole answer: no target token at all
            logger.warning("tokenization mismatch: no valid target tokens for loss computation")
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "attention_mask": torch.ones(len(input_ids), dtype=torch.long),
    }
