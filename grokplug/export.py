"""Export θ_pre / θ_grok as a directory that other toolkits load without grokplug.

* LLM runs (the model is a ``transformers.PreTrainedModel``): an HF model directory written by
  ``save_pretrained`` (safetensors) plus the run's tokenizer, so open-unlearning's
  ``model.model_args.pretrained_model_name_or_path=DIR`` or OPTML's ``--model_path`` style options
  load it with ``AutoModelForCausalLM.from_pretrained(DIR)``.
* Vision (and other ``nn.Module``) runs: ``model.safetensors`` holding the state dict, the
  architecture recorded in ``grokplug_export.json`` (preset, config, seed, class, module tree).
* A checkpoint served by the HF-Trainer-output provider is already an HF model folder: its
  non-pickle files are copied.

Every export records the source run, phase, step and the sha256 of the source checkpoint and of each
written file. The output directory must not exist; it is assembled under a temporary name and
renamed into place, so a crash never leaves a half-written export under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._atomic import sha256_file
from ._paths import check_output_dir
from ._resolve import Source, build_model, load_into, request_checkpoint
from ._tensor_files import load_weights, write_safetensors
from ._types import CheckpointRef
from .errors import CheckpointError, UsageError

__all__ = ["EXPORT_INFO", "export_checkpoint", "read_export_info"]

#: The provenance file every export carries.
EXPORT_INFO = "grokplug_export.json"

# Files of an HF checkpoint folder worth copying; pickles (optimizer.pt, rng_state.pth,
# training_args.bin) are never copied, since grokplug never hands pickles on.
_HF_FILES = (
    "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
    "chat_template.jinja",
)  # fmt: skip


def _is_hf_model(model: Any) -> bool:
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        return False
    return isinstance(model, PreTrainedModel)


def _run_tokenizer(run_dir: Path, config: Mapping[str, Any]) -> Any | None:
    """The tokenizer a run trained with: ``<run>/tokenizer`` or the named model's own."""
    from .llm.model import load_tokenizer

    saved = run_dir / "tokenizer"
    if (saved / "tokenizer.json").is_file() or (saved / "tokenizer_config.json").is_file():
        return load_tokenizer(saved)
    if config.get("tokenizer") or config.get("model"):
        return load_tokenizer(config.get("tokenizer") or config["model"])
    return None


def _write_from_run(ref: CheckpointRef, tmp: Path) -> dict[str, Any]:
    """Rebuild the run's model, fill it with the checkpoint and write it; returns the info to record."""
    from ._rundir import RunDir

    assert ref.run_dir is not None
    run = RunDir(ref.run_dir)
    tensors = load_weights(ref.path, ref.sha256)
    info: dict[str, Any] = {"preset": run.config.get("preset"), "config": run.config, "seed": run.seed}
    try:
        model = build_model(run.path)
    except CheckpointError:  # not made by a preset: the state dict alone, architecture unknown
        write_safetensors(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        return {**info, "format": "state_dict", "architecture": None}
    load_into(model, tensors, origin=f"checkpoint {ref.path}")
    if _is_hf_model(model):
        model.save_pretrained(str(tmp), safe_serialization=True)  # type: ignore[operator]
        tokenizer = _run_tokenizer(run.path, run.config)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        return {**info, "format": "hf", "architecture": type(model).__name__, "has_tokenizer": tokenizer is not None}
    write_safetensors(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
    architecture = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "module_tree": repr(model),
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
    }
    return {**info, "format": "state_dict", "architecture": architecture}


def _copy_hf_checkpoint(ref: CheckpointRef, tmp: Path) -> dict[str, Any]:
    """Copy an HF checkpoint folder's safe files (and the output dir's tokenizer when the folder has none)."""
    folder = Path(ref.path).parent
    if sha256_file(ref.path) != ref.sha256:
        raise CheckpointError(f"{ref.path} changed since it was resolved (sha256 mismatch)")
    copied = []
    for name in _HF_FILES:
        for where in (folder, folder.parent):  # the Trainer saves the tokenizer in both, or only at the root
            if (where / name).is_file():
                shutil.copy2(where / name, tmp / name)
                copied.append(name)
                break
    # a plain nn.Module trained by the Trainer has no config.json: its state dict alone
    return {"format": "hf" if "config.json" in copied else "state_dict", "source_folder": str(folder), "copied": copied}


def export_checkpoint(
    source: Source, out: str | os.PathLike[str], start: str = "grok", *, fallback: str | None = None,
    **options: Any,
) -> Path:  # fmt: skip
    """Write the ``start`` checkpoint of ``source`` to the new directory ``out``; returns ``out``.

    ``start`` is ``grok``, ``pre``, ``final``, ``best`` or a step; ``fallback`` as in
    :func:`grokplug.request_checkpoint`; ``options`` go to the resolving provider (for example
    ``val_metric="eval_accuracy"`` for an HF Trainer output directory). Refuses an existing ``out``.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} already exists; export never overwrites, choose a new --out directory")
    ref = request_checkpoint(source, start, fallback=fallback, **options)
    # the run (or, for a checkpoint folder, the output dir holding it) is a source: never write into it
    check_output_dir(out, sources=[ref.run_dir if ref.run_dir is not None else Path(ref.path).parent.parent])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        details = _write_from_run(ref, tmp) if ref.run_dir is not None else _copy_hf_checkpoint(ref, tmp)
        from ._version import __version__

        info = {
            "source": str(source),
            "source_run": None if ref.run_dir is None else str(Path(ref.run_dir).resolve()),
            "provider": ref.provider,
            "phase": ref.phase,
            "requested_phase": ref.requested_phase or start,
            "step": ref.step,
            "label": ref.label,
            "source_checkpoint": str(ref.path),
            "source_sha256": ref.sha256,
            "metrics": dict(ref.metrics),
            "grokplug_version": __version__,
            **details,
            "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
        os.rename(tmp, out)  # fails rather than merges if `out` appeared meanwhile
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"{out} appeared while exporting; export never overwrites") from None
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (39, 66):  # ENOTEMPTY (Linux / BSD): `out` appeared meanwhile
            raise UsageError(f"{out} appeared while exporting; export never overwrites") from None
        raise CheckpointError(f"cannot write the export to {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_export_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance an export recorded (source run, phase, step, sha256 of source and files)."""
    file = Path(path) / EXPORT_INFO
    if not file.is_file():
        raise UsageError(f"{path} is not a grokplug export (it has no {EXPORT_INFO})")
    return json.loads(file.read_text())
