"""Built-in training presets: tasks that grok offline on 2 CPU cores, each with a no-grok control.

* ``modular``: (a + b) mod p, embedding + MLP (fastest; the test suite trains it end to end).
* ``digits``: sklearn's bundled digits with Omnigrok's large-init MLP and MSE.
* ``modular-transformer``: (a + b) mod p as tokens through a 1-layer transformer.
* ``digits-noisy`` / ``digits-noisy-cnn``: digits with flipped train labels, MLP / CNN, aiming at the
  paper's regime (early peak, overfitting decline, late grok).

The LLM preset ``tofu-tiny`` lives with its domain (``grokplug/llm/preset.py``) and is registered by
``grokplug.hooks.llm``. Each module's docstring gives the recipe and the numbers measured on the 2-core CPU.
"""

from __future__ import annotations

from ._base import Preset, PresetData
from .digits import DIGITS
from .digits_regime import DIGITS_NOISY, DIGITS_NOISY_CNN
from .modular import MODULAR
from .transformer import MODULAR_TRANSFORMER

__all__ = ["BUILTIN_PRESETS", "DIGITS", "DIGITS_NOISY", "DIGITS_NOISY_CNN", "MODULAR", "MODULAR_TRANSFORMER", "Preset", "PresetData"]

BUILTIN_PRESETS: tuple[Preset, ...] = (MODULAR, DIGITS, MODULAR_TRANSFORMER, DIGITS_NOISY, DIGITS_NOISY_CNN)

