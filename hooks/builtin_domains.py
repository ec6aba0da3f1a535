"""Built-in domain of the core: ``function``, the decorated functions of :func:`grokplug.grok_aware`.

The vision and LLM domains are registered by their own built-in plugins (``grokplug.hooks.vision``,
``grokplug.hooks.llm``).
"""

from __future__ import annotations

from grokplug.hooks.specs import RegisterFn

from . import hookimpl


@hookimpl
def grokplug_register_domains(register: RegisterFn) -> None:
    from grokplug._decorator import FunctionDomain

    register("function", FunctionDomain())
