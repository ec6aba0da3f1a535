"""Errors grokplug raises on purpose.

Every handled error is a :class:`GrokplugError`. The CLI prints it on one line (``grokplug: error: ...``)
and exits with :attr:`GrokplugError.exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations

__all__ = [
    "ArchitectureMismatchError",
    "CheckpointError",
    "CheckpointIntegrityError",
    "DivergedError",
    "DuplicateRegistrationError",
    "FormatVersionError",
    "GrokplugError",
    "GrokplugWarning",
    "NoGrokError",
    "NotARunError",
    "PluginError",
    "RunDirError",
    "RunLockedError",
    "UnsafePathError",
    "UsageError",
]


class GrokplugError(Exception):
    """Base class of every error grokplug reports to the user on one line."""

    exit_code: int = 1


class UsageError(GrokplugError):
    """The caller asked for something that does not exist or is malformed (unknown preset, bad rate)."""

    exit_code = 2


class PluginError(GrokplugError):
    """A plugin failed: it raised inside a hook, failed to import, or broke the hook contract."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class DuplicateRegistrationError(PluginError):
    """Two plugins registered a method, metric or preset under the same name."""


class RunDirError(GrokplugError):
    """A run directory is missing, malformed, or not a grokplug run."""


class NotARunError(RunDirError):
    """The path given as a run directory does not exist or holds no grokplug run: a usage error (exit 2)."""

    exit_code = 2


class RunLockedError(RunDirError):
    """Another process holds the writer lock of a run directory."""


class FormatVersionError(RunDirError):
    """A run directory was written by a newer grokplug whose format this version cannot read."""


class UnsafePathError(RunDirError):
    """A manifest names a path outside its run directory."""


class CheckpointError(GrokplugError):
    """A checkpoint cannot be found, resolved or loaded."""


class CheckpointIntegrityError(CheckpointError):
    """A weights file is truncated, tampered with, or not in safetensors format."""


class ArchitectureMismatchError(CheckpointError):
    """A checkpoint's tensors do not fit the model it is loaded into."""


class NoGrokError(CheckpointError):
    """θ_grok was requested from a run that never grokked."""


class DivergedError(GrokplugError):
    """A loss became NaN or infinite; the run stopped and nothing was reported as a result."""


class GrokplugWarning(UserWarning):
    """Warnings grokplug emits (a plugin skipped, a malformed history line, ...)."""
