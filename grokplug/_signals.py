"""Stopping cleanly under a launcher: SIGTERM and a lost peer rank become exceptions that unwind.

``torchrun`` (behind ``accelerate launch``) sends SIGTERM to every surviving rank when one rank fails,
and batch schedulers do the same on cancel; a rank waiting in a collective (DDP's gradient all-reduce)
sees the dead peer first, as a ``RuntimeError`` from gloo or NCCL. Python's default for SIGTERM is to
die on the spot, leaving temporary files and no word of why. Inside :func:`stop_cleanly` the signal
raises :class:`Terminated` and the collective's error becomes :class:`PeerLost` (a one-line
:class:`~grokplug.errors.GrokplugError`), so the stack unwinds: ``with`` blocks remove their temporary
directories, the run lock is released, and the CLI (or a script) says on one line what happened.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import GrokplugError

__all__ = ["PeerLost", "Terminated", "stop_cleanly"]

#: how gloo and NCCL word a collective whose peer process is gone
PEER_LOST_MARKERS = ("closed by peer", "reset by peer", "broken pipe", "communicator was aborted",
                     "collective operation timeout", "connection refused")


class Terminated(BaseException):
    """The process was told to stop (SIGTERM). A ``BaseException``, like ``KeyboardInterrupt``: no
    ``except Exception`` swallows it, and no plugin is blamed for it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class PeerLost(GrokplugError):
    """A collective failed because another rank of the launch is gone."""


def _raise(signum: int, frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process the usual way
    raise Terminated(signum)


def is_peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective's error about a peer that went away (gloo/NCCL wording)."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(marker in text for marker in PEER_LOST_MARKERS)


@contextmanager
def stop_cleanly() -> Iterator[None]:
    """Within the body, SIGTERM raises :class:`Terminated` (main thread only) and a collective that lost
    its peer raises :class:`PeerLost`; both unwind the stack, so nothing half-written is left behind."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except RuntimeError as exc:
        if not is_peer_lost(exc):
            raise
        raise PeerLost(f"another rank of the launch stopped, so this one stops too ({_gist(exc)})") from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _gist(exc: BaseException) -> str:
    """The backend's own words, without its source path prefix and its generic advice."""
    import re

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo: "[/path/pair.cc:545] Read error ..."
    return text.split(". This is typically")[0][:160]
