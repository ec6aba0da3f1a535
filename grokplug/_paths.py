"""Path safety at grokplug's boundaries: outputs never land in a source run, reads never leave a run,
``--overwrite`` deletes only what a run owns, and names from users or plugins become safe file names.

The CLI and the public API call these before any work starts, so a refusal costs nothing and leaves
nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from ._path_arith import PathLike, is_within, resolve_inside, resolved
from .errors import RunDirError, UsageError

__all__ = ["PathLike", "check_output_dir", "check_output_file", "check_run_dir_target", "clear_run", "enclosing_run",
           "is_run", "is_within", "resolve_inside", "resolved", "safe_filename", "source_dirs"]


#: What a run directory's format owns, so what ``--overwrite`` may delete. ``tokenizer`` and ``reference``
#: are written by the LLM domain (its tokenizer and its cached retain-only reference run).
RUN_OWNED_FILES = ("manifest.json", "manifest.durable.json", "history.jsonl", "splits.json", "grok.json")
RUN_OWNED_FOLDERS = ("checkpoints", "tokenizer", "reference")
#: checkpoint folders (``00000120``) and the temp folders of interrupted saves (``.tmp-00000120-xyz``)
_CHECKPOINT_NAME = re.compile(r"^(\d{8}|\.tmp-\d{8}-.*)$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._+-]")


def is_run(path: PathLike) -> bool:
    """Whether ``path`` *is* a grokplug run: its manifest parses as one (not merely a file named manifest.json)."""
    from ._rundir import RunDir

    try:
        RunDir(path)
    except RunDirError:
        return False
    return True


def enclosing_run(path: PathLike) -> Path | None:
    """The grokplug run that ``path`` is, or lies inside, if any (its nearest such ancestor)."""
    p = resolved(path)
    for candidate in (p, *p.parents):
        if (candidate / "manifest.json").is_file() and is_run(candidate):
            return candidate
    return None


def check_output_dir(out: PathLike, *, sources: Iterable[PathLike] = (), what: str = "--out",
                     must_be_empty: bool = False) -> Path:
    """Refuse an output folder that is an existing file, or that resolves into (or onto) a source run."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is an existing file, not a folder; choose a folder")
    for source in sources:
        if is_within(path, source):
            raise UsageError(
                f"{what} {path} is inside the source run {source}; grokplug never writes into a source run, "
                "choose a folder outside it"
            )
    if must_be_empty and path.is_dir() and any(path.iterdir()):
        raise UsageError(f"{what} {path} already exists and is not empty; choose a new one")
    return path


def check_output_file(out: PathLike, *, sources: Iterable[PathLike] = (), what: str) -> Path:
    """Refuse an output file that is an existing folder, or that resolves into a source run."""
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"{what} {path} is an existing folder; give a file name (e.g. curves.png)")
    for source in sources:
        if is_within(path, source):
            raise UsageError(f"{what} {path} is inside the run {source}; grokplug never writes into a source run")
    return path


def check_run_dir_target(run_dir: PathLike) -> Path:
    """``train --run-dir``: not a file, not a folder holding something else's manifest, not inside another run."""
    from ._rundir import RunDir
    from .errors import FormatVersionError

    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--run-dir {path} is an existing file, not a folder")
    if (path / "manifest.json").exists():
        try:
            RunDir(path)
        except FormatVersionError:
            raise
        except RunDirError as exc:
            raise UsageError(f"--run-dir {path} is not a grokplug run ({exc}); refusing to write into it") from None
    parent_run = enclosing_run(path.parent) if path.parent != path else None
    if parent_run is not None:
        raise UsageError(f"--run-dir {path} is inside the run {parent_run}; choose a folder outside it")
    return path


def clear_run(path: PathLike) -> list[str]:
    """Delete what a grokplug run owns in ``path`` (for ``--overwrite``); returns the names kept.

    Refused unless ``path`` *is* a run (its manifest parses as one). Files the format does not own
    (a user's notes, another tool's output) are left in place.
    """
    root = Path(path)
    if not is_run(root):
        raise RunDirError(f"{root} is not a grokplug run (no manifest that parses as one); refusing to overwrite it")
    kept = []
    for child in sorted(root.iterdir()):
        name = child.name
        if child.is_symlink():  # never follow a link out of the run while deleting
            if name in RUN_OWNED_FILES or name in RUN_OWNED_FOLDERS:
                child.unlink()
            else:
                kept.append(name)
        elif name in RUN_OWNED_FILES and child.is_file():
            child.unlink()
        elif name == "checkpoints" and child.is_dir():
            _clear_checkpoints(child, kept)
        elif name in RUN_OWNED_FOLDERS and child.is_dir():
            shutil.rmtree(child)
        elif name.startswith(".") and name.endswith(".tmp") and child.is_file():  # interrupted atomic writes
            child.unlink()
        elif name not in (".lock", ".lock.owner"):  # the run lock and its holder stay
            kept.append(name)
    return kept


def _clear_checkpoints(folder: Path, kept: list[str]) -> None:
    for child in folder.iterdir():
        if _CHECKPOINT_NAME.match(child.name) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            kept.append(f"checkpoints/{child.name}")
    if not any(folder.iterdir()):
        folder.rmdir()


def safe_filename(name: str) -> str:
    """A name from a user or a plugin, made safe as (part of) a file name: no separators, no leading dot."""
    cleaned = _UNSAFE_CHAR.sub("_", str(name))
    cleaned = re.sub(r"^\.+", lambda m: "_" * len(m.group()), cleaned)
    return cleaned or "_"


def source_dirs(source: object) -> list[Path]:
    """The folders a source stands for: a run dir path, or a checkpoint reference's run and checkpoint folder."""
    if isinstance(source, (str, os.PathLike)):
        return [Path(source)]
    found = [getattr(source, "run_dir", None), getattr(getattr(source, "path", None), "parent", None)]
    return [Path(p) for p in found if p is not None]
