"""The run directory: the one place a tracked training run leaves everything a method needs.

    RUN/
      manifest.json                       format version, run config, checkpoint table (+ sha256), pins
      manifest.durable.json               the manifest as of the last durable point (see _durability)
      history.jsonl                       one eval record per line
      splits.json                         train/val indices and forget-eligible positions
      grok.json                           the phase report (label, θ_pre, θ_grok, reasons)
      checkpoints/<step>/model.safetensors
      checkpoints/<step>/meta.json        step, metrics, sha256, config, seed, data hashes

The manifest is the source of truth: a checkpoint folder it does not name (left by a crash mid-save)
does not exist as far as grokplug is concerned.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import _durability
from ._atomic import describe_os_error, write_all, write_bytes_atomic, write_json_atomic
from ._manifest_check import manifest_problem
from ._path_arith import resolve_inside
from .errors import FormatVersionError, GrokplugWarning, NotARunError, RunDirError, UnsafePathError

FORMAT_NAME = "grokplug-run"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
HISTORY = "history.jsonl"
SPLITS = "splits.json"
REPORT = "grok.json"
CHECKPOINTS = "checkpoints"


def checkpoint_dirname(step: int) -> str:
    return f"{int(step):08d}"


class RunDir:
    """Read (and, for the tracker, write) one run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).is_file():
            if not self.path.exists():
                raise NotARunError(f"run directory {self.path} does not exist")
            if not self.path.is_dir():
                raise NotARunError(f"{self.path} is a file, not a grokplug run directory")
            raise NotARunError(f"{self.path} is not a grokplug run directory (it has no {MANIFEST})")
        self.pending_sync = _durability.PendingSync()  # checkpoints written since the last durable point
        self._written: dict[str, dict[str, Path]] = {}  # step -> {manifest path: file} this object wrote
        self._checkpoints_root: Path | None = None
        self.manifest = self._read_manifest()

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], run: Mapping[str, Any]) -> RunDir:
        """Create a run directory (the caller holds its lock). ``run`` holds config, seed, data hashes."""
        path = Path(path)
        (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        from ._version import __version__

        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "grokplug_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "status": "running",
            "run": dict(run),
            "checkpoints": {},
            "latest_step": None,
            "pins": {},
        }
        _durability.write_manifest(path, MANIFEST, manifest, durable=True)
        return cls(path)

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        return (Path(path) / MANIFEST).is_file()

    # -- manifest ------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """A fixed file of the run (``grok.json``, ...), refused if it resolves outside the run (a symlink out)."""
        target = (self.path / name).resolve()
        root = self.path.resolve()
        if root not in target.parents:
            raise UnsafePathError(f"{self.path / name} resolves to {target}, which is outside the run directory; refused")
        return target

    def _read_manifest(self) -> dict[str, Any]:
        file = self.file(MANIFEST)
        try:
            manifest = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            recovered = _durability.recover_from_durable_copy(self.path) if isinstance(exc, ValueError) else None
            if recovered is None:
                raise RunDirError(f"cannot read {file}: {exc}") from exc
            manifest, gone = recovered  # a power loss between durable points (see _durability)
            warnings.warn(f"{file} is unreadable ({exc}); read the run as of its last durable point "
                          f"({_durability.DURABLE_COPY}){', without steps ' + ', '.join(gone) if gone else ''}",
                          GrokplugWarning, stacklevel=3)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise RunDirError(f"{file} is not a grokplug run manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise FormatVersionError(
                f"{file} has format version {version!r}, but this grokplug reads up to version {FORMAT_VERSION}; "
                "upgrade grokplug to read this run"
            )
        problem = manifest_problem(manifest)
        if problem:
            raise RunDirError(f"{file} is malformed: {problem}; refused")
        return manifest

    def reload(self) -> RunDir:
        self.manifest = self._read_manifest()
        return self

    def write_manifest(self, *, durable: bool = True) -> None:
        """Replace ``manifest.json`` atomically; ``durable``: a durable point (see :mod:`grokplug._durability`)."""
        if durable:
            named = ((self.path / e["path"]).parent for e in self.manifest.get("checkpoints", {}).values())
            self.pending_sync.flush(named)
        _durability.write_manifest(self.path, MANIFEST, self.manifest, durable=durable)

    @property
    def run_info(self) -> dict[str, Any]:
        return dict(self.manifest.get("run", {}))

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.run_info.get("config", {}))

    @property
    def seed(self) -> int | None:
        return self.run_info.get("seed")

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "running"))

    @property
    def latest_step(self) -> int | None:
        return self.manifest.get("latest_step")

    @property
    def pins(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.manifest.get("pins", {}).items() if v is not None}

    # -- paths ---------------------------------------------------------------------------------

    def resolve_inside(self, relative: str) -> Path:
        """A manifest path, refused unless it stays inside the run directory."""
        return resolve_inside(self.path, relative, what=f"manifest of {self.path}")

    def checkpoints_root(self) -> Path:
        """``checkpoints/``, resolved once and refused if it leads out of the run."""
        if self._checkpoints_root is None:
            self._checkpoints_root = self.resolve_inside(CHECKPOINTS)
        return self._checkpoints_root

    def wrote_checkpoint(self, step: int, files: Iterable[str]) -> None:
        """Note that this object just wrote checkpoint ``step`` with these file names."""
        folder = self.checkpoints_root() / checkpoint_dirname(step)
        self._written[str(int(step))] = {f"{CHECKPOINTS}/{folder.name}/{name}": folder / name for name in files}

    def checkpoint_file(self, step: int, relative: str) -> Path:
        """A file of checkpoint ``step`` named by the manifest, refused unless it stays inside the run.
        One this object wrote needs no symlink walk (that costs a tracker save more than its writes)."""
        known = self._written.get(str(int(step)), {}).get(relative)
        return known if known is not None else self.resolve_inside(relative)

    def checkpoint_steps(self) -> list[int]:
        return sorted(int(s) for s in self.manifest.get("checkpoints", {}))

    def checkpoint_entry(self, step: int) -> dict[str, Any]:
        entry = self.manifest.get("checkpoints", {}).get(str(int(step)))
        if entry is None:
            from .errors import CheckpointError

            kept = ", ".join(map(str, self.checkpoint_steps())) or "none"
            raise CheckpointError(f"run {self.path} has no checkpoint at step {step} (kept steps: {kept})")
        return dict(entry)

    def weights_path(self, step: int) -> Path:
        return self.resolve_inside(self.checkpoint_entry(step)["path"])

    def checkpoint_meta(self, step: int) -> dict[str, Any]:
        entry = self.checkpoint_entry(step)
        meta_path = self.resolve_inside(entry.get("meta", str(Path(entry["path"]).parent / "meta.json")))
        try:
            return json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cannot read checkpoint metadata {meta_path}: {exc}") from exc

    # -- history -------------------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """Eval records sorted by step. Malformed lines (a crash mid-write) are skipped with a warning."""
        file = self.path / HISTORY
        if not file.exists():
            return []
        file = self.file(HISTORY)
        records: dict[int, dict[str, Any]] = {}
        with open(file, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    step = int(record["step"])
                except (ValueError, KeyError, TypeError):
                    warnings.warn(
                        f"{file} line {lineno} is malformed (a crash mid-write?); skipped", GrokplugWarning, stacklevel=2
                    )
                    continue
                records[step] = record  # a re-logged step (after resume) replaces the older record
        return [records[s] for s in sorted(records)]

    def history_record(self, step: int) -> dict[str, Any] | None:
        """The eval record of one step, without parsing every line (resolving a checkpoint needs only this).

        Lines are pre-filtered on the text ``"step": <step>`` that :meth:`append_history` writes; a
        history written another way falls back to :meth:`history`.
        """
        file = self.path / HISTORY
        if not file.exists():
            return None
        file = self.file(HISTORY)
        needle, found = f'"step": {int(step)}', None
        with open(file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                at = line.find(needle)
                if at < 0 or line[at + len(needle): at + len(needle) + 1].isdigit():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("step") == int(step):
                    found = record  # a re-logged step (after resume) replaces the older record
        if found is None:
            found = next((r for r in self.history() if r["step"] == int(step)), None)
        return found

    def append_history(self, record: Mapping[str, Any]) -> None:
        data = (json.dumps(dict(record), sort_keys=True, allow_nan=True) + "\n").encode()
        file = self.path / HISTORY
        try:
            fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    write_all(fd, data)
                except OSError:  # disk full mid-line: cut the torn line, or the next record would be glued to it
                    os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise describe_os_error(exc, "append an eval record to", file) from exc

    def rewrite_history(self, records: list[Mapping[str, Any]]) -> None:
        data = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in records)
        write_bytes_atomic(self.path / HISTORY, data.encode())

    # -- splits and report ---------------------------------------------------------------------

    def write_splits(self, splits: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / SPLITS, dict(splits))

    def splits(self) -> dict[str, Any]:
        file = self.path / SPLITS
        if not file.exists():
            raise RunDirError(f"run {self.path} has no {SPLITS} (it was not made by a preset or tracker with data)")
        try:
            return json.loads(self.file(SPLITS).read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cannot read {file}: {exc}") from exc

    def write_report(self, report: Any, *, durable: bool = True) -> None:
        write_json_atomic(self.path / REPORT, report.to_dict(), sync=durable)

    def report(self) -> Any:
        """The stored phase report, or ``None`` if the run has not written one yet."""
        from ._detect import GrokReport

        file = self.path / REPORT
        if not file.exists():
            return None
        try:
            report = GrokReport.from_dict(json.loads(self.file(REPORT).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise RunDirError(f"cannot read {file}: {exc}") from exc
        phases = ("pre", "pre-matched", "grok") if report.shape else ("pre", "grok")  # no shape: one θ_pre rule
        for phase in phases:
            step = getattr(report, f"{phase.replace('-', '_')}_step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
                raise RunDirError(f"{file} names θ_{phase} step {step!r}, which is not a step number; refused")
            pinned = self.pins.get(phase)
            if self.status == "finished" and step != pinned:  # the manifest is the source of truth
                raise RunDirError(
                    f"{file} says θ_{phase} is step {step}, but the manifest pins step {pinned}; the run was "
                    "edited or damaged, refused"
                )
        return report


