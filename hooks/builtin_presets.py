"""Built-in training presets that grok offline on 2 CPU cores: modular, digits, modular-transformer (tofu-tiny: ``grokplug.hooks.llm``)."""

from __future__ import annotations

from grokplug.hooks.specs import RegisterFn

from . import hookimpl


@hookimpl
def grokplug_register_presets(register: RegisterFn) -> None:
    from grokplug.presets import BUILTIN_PRESETS

    for preset in BUILTIN_PRESETS:
        register(preset.name, preset)
