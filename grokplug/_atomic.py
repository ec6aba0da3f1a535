"""Small filesystem primitives: atomic writes, hashing, and the run-directory writer lock."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import GrokplugError, RunLockedError

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (index lists, configs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256_ints(values: Sequence[int]) -> str:
    return sha256_json([int(v) for v in values])


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically.

    On any error the temporary file is removed, so a crash or a full disk never leaves a
    half-written file under the final name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], *, replace: bool = False, what: str = "write") -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``target``; on success it becomes ``target`` (one rename).

    An existing non-empty ``target`` is refused (a :class:`UsageError`) unless ``replace``; an empty one
    is replaced. On any error the temporary directory is removed; an ``OSError`` (disk full, read-only)
    becomes one line naming ``what`` was being written.
    """
    import shutil

    from .errors import UsageError

    target = Path(target)
    if not replace and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"output directory {target} already exists and is not empty; choose a new one")
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        yield tmp
        if target.exists():
            if target.is_dir() and replace:
                shutil.rmtree(target)
            else:
                target.rmdir()
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise describe_os_error(exc, what, target) from exc
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically; a failed write (disk full, read-only) is a one-line error."""
    try:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise describe_os_error(exc, "write", target) from exc


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def describe_os_error(
    exc: OSError, action: str, path: str | os.PathLike[str], outcome: str = "nothing was left half-written"
) -> GrokplugError:
    """A one-line error for the usual ways a write fails (disk full, read-only, no permission)."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the filesystem is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file size limit is exceeded",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return GrokplugError(f"cannot {action} {path}: {reason}; {outcome}")


class RunLock:
    """An exclusive writer lock on a run directory (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows;
    released if the process dies). Who holds it is written beside it, in ``.lock.owner``."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / ".lock"
        self.owner = Path(run_dir) / ".lock.owner"
        self._lock: Any = None

    def acquire(self) -> RunLock:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            try:
                holder = self.owner.read_text(errors="replace").strip()[:64] or "another process"
            except OSError:
                holder = "another process"
            raise RunLockedError(
                f"run directory {self.path.parent} is being written by {holder}; "
                "two trackers cannot write one run (use another --run-dir, or wait for it to finish)"
            ) from None
        self.owner.write_text(f"pid {os.getpid()}")
        self._lock = lock
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
