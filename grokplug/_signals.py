"""Stopping cleanly under a launcher: SIGTERM and a lost peer rank become exceptions that unwind.

``torchrun`` (behind ``accelerate launch``) sends SIGTERM to every surviving rank when one rank fails,
and batch schedulers do the same on cancel; a rank waiting in a collective (DDP's gradient all-reduce)
sees the dead peer first, as a ``RuntimeError`` from gloo or NCCL. Python's default for SIGTERM is to
die on the spot, leaving temporary files and no word of why. Inside :func:`stop_cleanly` the signal
raises :class:`Terminated` and the collective's error becomes :class:`PeerLost` (a one-line
:class:`~grokplug.errors.GrokplugError`), so the stack unwinds: ``with`` blocks remove their temporary
directories, the run lock is released, and the CLI (or a script) says on one line what happened.

Leaving the block normally, or by an ordinary error, also ends torch.distributed's default process
group if one is up (:func:`end_process_group`). Without it, a 2-rank gloo run aborted about one exit
in six to one in three on 2 cores (SIGABRT, "terminate called without an active exception"): a gloo
worker thread releases the last collective's tensors after Python has started to shut down, cannot
take the GIL, and is killed inside C++.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import GrokplugError

__all__ = ["PeerLost", "Terminated", "end_process_group", "stop_cleanly"]

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


def end_process_group() -> None:
    """Destroy torch.distributed's default process group, if one is up, and let gloo's worker threads
    finish with the last collective's tensors while Python can still serve them.

    Call it at the end of a multi-process script, before Python exits (see the module notes).
    ``destroy_process_group`` alone (accelerate's ``end_training``) is not enough: gloo's worker threads
    outlive it, and one may still hold the last collective's tensors, whose release needs the GIL. A
    core dump of the abort shows exactly that (``ProcessGroupGloo::AsyncWork::~AsyncWork`` →
    ``decref_pyobject`` → ``take_gil`` → ``pthread_exit`` during ``Py_FinalizeEx``). Sleeping a few
    switch intervals hands the GIL to that thread before Python starts to shut down.
    """
    import sys
    import time

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        time.sleep(max(0.05, 10 * sys.getswitchinterval()))


@contextmanager
def stop_cleanly() -> Iterator[None]:
    """Within the body, SIGTERM raises :class:`Terminated` (main thread only) and a collective that lost
    its peer raises :class:`PeerLost`; both unwind the stack, so nothing half-written is left behind.

    Wrap a whole multi-process program (its ``main``): leaving the body normally or by an ordinary
    error ends the default process group (:func:`end_process_group`). After SIGTERM or a lost peer it is
    left alone: tearing down a group whose peer is gone can wait for the backend's timeout.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except RuntimeError as exc:
        if is_peer_lost(exc):
            raise PeerLost(f"another rank of the launch stopped, so this one stops too ({_gist(exc)})") from exc
        end_process_group()
        raise
    except Exception:
        end_process_group()
        raise
    else:
        end_process_group()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _gist(exc: BaseException) -> str:
    """The backend's own words, without its source path prefix and its generic advice."""
    import re

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo: "[/path/pair.cc:545] Read error ..."
    return text.split(". This is typically")[0][:160]
