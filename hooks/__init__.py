"""grokplug's hook specifications and built-in hook implementations (installed as ``grokplug.hooks``).

Plugin authors import the implementation marker from the top-level package::

    from grokplug import hookimpl

The specifications live in :mod:`grokplug.hooks.specs`, grouped by phase.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "grokplug"

#: Marks a hook specification (grokplug itself only).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a hook implementation. Import it as ``from grokplug import hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
