"""Small filesystem primitives: atomic writes, hashing, and the run-directory writer lock."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
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


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than it was given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename inside it) to disk, where the filesystem allows it."""
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# Temp names: pid, a per-process token and a counter. tempfile's random names cost a run's hot path
# (a tracker save writes several) far more than this, and exclusive creation still guards collisions.
_TOKEN = secrets.token_hex(3)
_COUNTER = itertools.count()


def create_temp(parent: Path, prefix: str, suffix: str, create: Callable[[Path], Any]) -> tuple[Path, Any]:
    """Create a fresh ``parent/<prefix><unique><suffix>`` with ``create`` (which must refuse an existing name).

    Returns the path and what ``create`` returned (a file descriptor, or ``None`` for a folder).
    """
    while True:
        path = parent / f"{prefix}{os.getpid()}-{_TOKEN}-{next(_COUNTER)}{suffix}"
        try:
            return path, create(path)
        except FileExistsError:  # another process reused a pid with the same token: try the next name
            continue


def make_private_dir(path: Path) -> None:
    os.mkdir(path, 0o700)  # as tempfile.mkdtemp made it


def _open_new(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)


def _open_temp_beside(target: Path) -> tuple[Path, int]:
    try:
        return create_temp(target.parent, f".{target.name}.", ".tmp", _open_new)
    except FileNotFoundError:  # the folder is not there yet: make it once, not on every write
        target.parent.mkdir(parents=True, exist_ok=True)
        return create_temp(target.parent, f".{target.name}.", ".tmp", _open_new)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically.

    On any error the temporary file is removed, so a crash or a full disk never leaves a
    half-written file under the final name. ``sync=False`` skips the fsyncs: still atomic if the
    process dies, but not durable across a power loss (see :mod:`grokplug._durability`).
    """
    target = Path(target)
    tmp, fd = _open_temp_beside(target)
    os.close(fd)
    try:
        yield tmp
        if sync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if sync:
            fsync_dir(target.parent)
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
        tmp, _ = create_temp(target.parent, f".{target.name}.", "", make_private_dir)
        yield tmp
        if target.exists():
            if target.is_dir() and replace:
                shutil.rmtree(target)
            else:
                target.rmdir()
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise describe_os_error(exc, what, target) from exc
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes, *, sync: bool = True) -> None:
    """Replace ``target`` with ``data`` atomically; a failed write (disk full, read-only) is a one-line error."""
    target = Path(target)
    tmp: Path | None = None
    try:
        tmp, fd = _open_temp_beside(target)  # written through the descriptor it was created with: no reopen
        try:
            write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        if sync:
            fsync_dir(target.parent)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError):
            raise describe_os_error(exc, "write", target) from exc
        raise


def write_json_atomic(
    target: str | os.PathLike[str], obj: Any, *, indent_levels: int | None = None, sync: bool = True
) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically.

    ``indent_levels=n`` indents only the outer ``n`` levels of objects and writes what is inside them
    on one line each, through json's C encoder (about 3× faster than ``indent=2``, which falls back to
    the pure-Python encoder): for files rewritten on a hot path, such as a run's manifest.
    """
    text = json.dumps(obj, indent=2, sort_keys=True) if indent_levels is None else outer_indented_json(obj, indent_levels)
    write_bytes_atomic(target, (text + "\n").encode(), sync=sync)


_COMPACT = json.JSONEncoder(sort_keys=True)  # one instance: json.dumps builds a new encoder per call


def outer_indented_json(obj: Any, levels: int, depth: int = 0) -> str:
    """Sorted JSON with the outer ``levels`` of objects indented, one line per value below them."""
    if levels <= 0 or not isinstance(obj, dict) or not obj:
        return _COMPACT.encode(obj)
    pad = "  " * (depth + 1)
    items = (f"{pad}{_COMPACT.encode(str(key))}: {outer_indented_json(value, levels - 1, depth + 1)}"
             for key, value in sorted(obj.items(), key=lambda kv: str(kv[0])))
    return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"


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
