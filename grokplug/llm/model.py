"""Offline language models for the TOFU path: a locally trained tokenizer and a tiny Llama.

Nothing here downloads: the tokenizer is trained with ``tokenizers`` on the generated corpus and saved
beside the run (``<run>/tokenizer/``); the tiny model is built from a ``LlamaConfig``. Any
``AutoModelForCausalLM`` name or local path can replace the tiny model (:func:`load_causal_lm`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import GrokplugError, UsageError

__all__ = [
    "EOS",
    "PAD",
    "UNK",
    "load_causal_lm",
    "load_tokenizer",
    "save_tokenizer",
    "tiny_causal_lm",
    "tiny_config",
    "train_tokenizer",
]

EOS, PAD, UNK = "<eos>", "<pad>", "<unk>"
SPECIAL_TOKENS = (PAD, EOS, UNK)  # ids 0, 1, 2 in every tokenizer trained here


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024, min_frequency: int = 1) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Byte-level so that any text round-trips through encode/decode (generation is scored with ROUGE on
    decoded text) and no input is ever unknown; ``vocab_size`` above the corpus' merge count simply
    gives whole words. Deterministic for the same texts and settings.

    Pre-tokens are a word or a punctuation run *with its trailing whitespace* ("Answer", ": ", "Anna ").
    So the prompt ``"...Answer: "`` tokenises to a prefix of ``"...Answer: <answer>"`` and OU's label mask
    (``len(prompt_ids)`` positions) covers exactly the prompt; GPT-2's leading-space pieces would swallow
    the first answer token into the mask.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\w+\s*|[^\w\s]+\s*|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=int(min_frequency),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=EOS, pad_token=PAD, unk_token=UNK, model_max_length=512,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer: Any, path: str | os.PathLike[str]) -> Path:
    """Save with ``save_pretrained`` into a temporary sibling, then rename (a reader never sees half)."""
    from .._atomic import atomic_dir

    path = Path(path)
    with atomic_dir(path, replace=True, what="save the tokenizer to") as tmp:
        tokenizer.save_pretrained(str(tmp))
    return path


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> Any:
    """A tokenizer by local path or hub name; pad = eos when it has none (as open-unlearning does)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load a tokenizer from {str(name_or_path)!r}: {_first_line(exc)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tiny_config(tokenizer: Any | None = None, *, vocab_size: int | None = None, hidden: int = 64, layers: int = 2,
                heads: int = 4, intermediate: int | None = None, max_positions: int = 128,
                attn_implementation: str = "sdpa") -> Any:
    """The ``LlamaConfig`` of :func:`tiny_causal_lm` (float32, no tied embeddings)."""
    from transformers import LlamaConfig

    if tokenizer is None and vocab_size is None:
        raise UsageError("tiny_config needs a tokenizer or a vocab_size")
    if hidden % heads:
        raise UsageError(f"hidden={hidden} is not a multiple of heads={heads}")
    pad_id = tokenizer.pad_token_id if tokenizer is not None else 0
    eos_id = tokenizer.eos_token_id if tokenizer is not None else 1
    config = LlamaConfig(
        vocab_size=int(vocab_size or len(tokenizer)),  # type: ignore[arg-type]  # one of the two is given (checked above)
        hidden_size=int(hidden),
        intermediate_size=int(intermediate or 4 * hidden),
        num_hidden_layers=int(layers),
        num_attention_heads=int(heads),
        num_key_value_heads=int(heads),
        max_position_embeddings=int(max_positions),
        pad_token_id=pad_id,
        bos_token_id=eos_id,  # no BOS is ever prepended; generation uses eos as a stand-in
        eos_token_id=eos_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    config._attn_implementation = attn_implementation
    return config


def tiny_causal_lm(tokenizer: Any | None = None, *, seed: int = 0, **kwargs: Any) -> torch.nn.Module:
    """A freshly initialised ``LlamaForCausalLM`` (same seed → same weights; global RNG untouched).

    ``kwargs`` go to :func:`tiny_config` (``hidden``, ``layers``, ``heads``, ``vocab_size``, ...).
    """
    from transformers import LlamaForCausalLM

    from ..presets._base import seeded_build

    config = tiny_config(tokenizer, **kwargs)
    model = seeded_build(int(seed), lambda: LlamaForCausalLM(config))
    return model.float()


def load_causal_lm(name_or_path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32,
                   **kwargs: Any) -> torch.nn.Module:
    """Any ``AutoModelForCausalLM`` by local path or hub name (offline: a local path, or a cached name).

    Raises :class:`grokplug.errors.UsageError` with one line when it cannot be found or loaded.
    """
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM

    # `dtype=` replaced `torch_dtype=` in transformers 4.56; older releases (OU's pin 4.45.1) need the old name
    dtype_kw = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    path = str(name_or_path)
    try:
        return AutoModelForCausalLM.from_pretrained(path, **{dtype_kw: dtype}, **kwargs)
    except (OSError, ValueError) as exc:
        hint = "" if Path(path).exists() else " (not a local directory; offline, a hub name works only if cached)"
        raise UsageError(f"cannot load a causal LM from {path!r}{hint}: {_first_line(exc)}") from None


def model_from_config(config: Mapping[str, Any], tokenizer: Any, seed: int) -> torch.nn.Module:
    """The model a tofu preset config asks for: ``config["model"]`` (name or path) or the tiny Llama."""
    if config.get("model"):
        return load_causal_lm(config["model"])
    model = tiny_causal_lm(
        tokenizer, seed=seed, vocab_size=config.get("vocab_size"), hidden=int(config["hidden"]),
        layers=int(config["layers"]), heads=int(config["heads"]), intermediate=config.get("intermediate"),
        max_positions=int(config.get("max_positions", 128)),
    )
    scale = float(config.get("init_scale", 1.0))
    if scale != 1.0:  # Omnigrok: a larger initial norm delays generalisation until weight decay shrinks it
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "norm" not in name:
                    param.mul_(scale)
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_vocab(model: Any, tokenizer: Any) -> None:
    """Refuse a tokenizer whose ids the model cannot embed (a mismatched --model / tokenizer pair)."""
    size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > size:
        raise GrokplugError(f"tokenizer has {len(tokenizer)} tokens but the model embeds only {size}")
