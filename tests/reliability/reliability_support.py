"""Helpers for the reliability campaign: hashing trees, copying runs, running the real CLI, real faults."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grokplug._atomic import sha256_file


def tree_state(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: relative path -> (sha256, mtime_ns). Added, removed or rewritten files show."""
    return {
        p.relative_to(root).as_posix(): (sha256_file(p), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ignore
    }


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a (session-shared) run that a test may damage."""
    shutil.copytree(src, dst)
    return dst


def edit_manifest(run: Path, edit: Any) -> None:
    """Apply ``edit(manifest)`` to ``run/manifest.json`` (simulates tampering or a newer writer)."""
    file = run / "manifest.json"
    manifest = json.loads(file.read_text())
    edit(manifest)
    file.write_text(json.dumps(manifest))


def temp_leftovers(root: Path) -> list[str]:
    """Names under ``root`` that look like an interrupted write (grokplug's temp files and folders)."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.startswith(".") and p.name not in (".lock", ".lock.owner")  # the run lock and its holder
    )


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("grokplug")
    return [str(script)] if script.exists() else [sys.executable, "-m", "grokplug.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The real ``grokplug`` console script in a fresh process (entry points off unless ``env`` says otherwise)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}
    return subprocess.run(
        [*cli_command(), *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False, **kwargs
    )


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """``stderr`` is exactly one ``grokplug: error:`` line containing every needle, and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("grokplug: error: "), lines[0]
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


# -- real faults -----------------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str = "64k") -> Iterator[bool]:
    """Mount a size-limited tmpfs at ``path`` (a real ENOSPC). Yields ``False`` when mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and _mount("-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path))
    try:
        yield mounted
    finally:
        if mounted:
            _umount(path)


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[str | None]:
    """Make ``path`` a directory nobody can write into, for real; yields how (``None``: not possible here).

    Not root: ``chmod 0555`` (EACCES). Root: a read-only tmpfs mounted there (EROFS), when allowed.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield "chmod"
        finally:
            path.chmod(0o755)
        return
    mounted = _mount("-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path))
    try:
        yield "ro-mount" if mounted else None
    finally:
        if mounted:
            _umount(path)


@contextlib.contextmanager
def read_only_tree(path: Path) -> Iterator[str | None]:
    """Make an existing tree read-only for real (any write attempt fails); yields how, ``None`` if impossible."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield "chmod"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    mounted = _mount("--bind", str(path), str(path)) and _mount("-o", "remount,ro,bind", str(path))
    try:
        yield "ro-bind-mount" if mounted else None
    finally:
        if mounted or os.path.ismount(path):
            _umount(path)
