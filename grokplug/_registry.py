"""Name → object tables filled by the ``grokplug_register_*`` hooks, llm-style ``register`` callbacks."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import DuplicateRegistrationError, PluginError, UsageError

#: The one pattern for method, metric and preset names (and aliases): they appear in listings,
#: command lines and file names, so no spaces, separators or control characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class Registered:
    """One registered object and who registered it."""

    name: str
    obj: Any
    plugin: str
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> dict[str, Any]:
        doc = inspect.getdoc(self.obj) or ""
        return {
            "name": self.name,
            "plugin": self.plugin,
            "aliases": list(self.aliases),
            "domain": getattr(self.obj, "domain", None),
            "description": getattr(self.obj, "description", None) or doc.split("\n", 1)[0],
        }


class Registry:
    """A table of methods, metrics or presets. Looking up an unknown name is a :class:`UsageError`."""

    def __init__(self, kind: str, who: Callable[[str], str] = repr) -> None:
        self.kind = kind
        self._who = who
        self._entries: dict[str, Registered] = {}
        self._aliases: dict[str, str] = {}

    def bound_to(self, plugin: str) -> Callable[..., None]:
        """The ``register`` callback handed to one plugin's registration hook."""

        def register(name: str, obj: Any, *, aliases: tuple[str, ...] | list[str] = ()) -> None:
            self.add(name, obj, plugin=plugin, aliases=tuple(aliases))

        return register

    def add(self, name: str, obj: Any, *, plugin: str, aliases: tuple[str, ...] = ()) -> None:
        for key in (name, *aliases):
            if not isinstance(key, str) or not NAME_PATTERN.fullmatch(key):
                raise PluginError(
                    f"plugin {self._who(plugin)} registered a {self.kind[:-1]} with an invalid name {key!r}: names "
                    f"match {NAME_PATTERN.pattern} (letters, digits, . _ + -; at most 64 characters)",
                    plugin=plugin, hook=f"grokplug_register_{self.kind}",
                )
        for key in (name, *aliases):
            owner = self._entries.get(self._aliases.get(key, key))
            if owner is not None:
                raise DuplicateRegistrationError(
                    f"{self.kind[:-1]} {key!r} is registered twice: by plugin {self._who(owner.plugin)} "
                    f"and by plugin {self._who(plugin)}; disable one with GROKPLUG_DISABLED_PLUGINS",
                    plugin=plugin,
                )
        self._entries[name] = Registered(name, obj, plugin, aliases)
        for alias in aliases:
            self._aliases[alias] = name

    def get(self, name: str) -> Any:
        entry = self._entries.get(self._aliases.get(name, name))
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UsageError(f"unknown {self.kind[:-1]} {name!r}; known {self.kind}: {known}")
        return entry.obj

    def entry(self, name: str) -> Registered:
        self.get(name)
        return self._entries[self._aliases.get(name, name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> list[dict[str, Any]]:
        return [self._entries[name].describe() for name in self.names()]
