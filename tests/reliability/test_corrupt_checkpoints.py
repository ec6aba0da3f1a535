"""Cases 2-8: damaged, tampered, foreign, newer, misfitting, missing and pickled checkpoints.

Every case damages a private copy of a real tracked run, then goes through the public API (and the
CLI where a user would meet it). Each error is a one-line GrokplugError that names what is wrong, and
the model it was loading into is left as it was.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import grokplug
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug.cli import main
from grokplug.errors import (
    ArchitectureMismatchError,
    CheckpointIntegrityError,
    FormatVersionError,
    GrokplugError,
    NoGrokError,
    UnsafePathError,
)

from reliability_support import assert_one_line_error, copy_run, edit_manifest, tree_state


@pytest.fixture
def run(scripted_run, tmp_path) -> Path:
    return copy_run(scripted_run, tmp_path / "run")


def _grok(run: Path) -> tuple[int, Path, str]:
    ref = grokplug.request_checkpoint(run, "grok")
    return ref.step, ref.path, ref.sha256


def _set_entry(run: Path, step: int, **fields: str) -> None:
    edit_manifest(run, lambda m: m["checkpoints"][str(step)].update(fields))


def _loads_nothing(run: Path, error: type[GrokplugError], *needles: str) -> str:
    """load_checkpoint fails with ``error`` naming every needle, and the model is untouched."""
    model = torch.nn.Linear(4, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error) as info:
        grokplug.load_checkpoint(model, run, "grok")
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    return message


# -- case 2 ----------------------------------------------------------------------------------------


def test_truncated_weights_file_is_refused(run):
    step, path, recorded = _grok(run)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _loads_nothing(run, CheckpointIntegrityError, str(path), "does not match its manifest", recorded[:12], "truncated")
    # even when the manifest is made to agree with the truncated file, it is not parsed as weights
    _set_entry(run, step, sha256=sha256_file(path))
    _loads_nothing(run, CheckpointIntegrityError, str(path), "not a readable safetensors file", "truncated")


def test_truncated_weights_of_a_preset_run_fail_the_cli_on_one_line(memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    path = grokplug.request_checkpoint(run, "pre").path
    path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    assert main(["unlearn", str(run), "--method", "ssd", "--start", "pre", "--out", str(tmp_path / "out")]) == 1
    assert_one_line_error(capsys.readouterr().err, str(path), "does not match its manifest")
    assert not (tmp_path / "out").exists()


# -- case 3 ----------------------------------------------------------------------------------------


def test_weights_whose_sha256_no_longer_matches_are_refused(run):
    _, path, recorded = _grok(run)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of one weight: still a valid safetensors file
    path.write_bytes(bytes(data))
    actual = sha256_file(path)
    message = _loads_nothing(run, CheckpointIntegrityError, str(path), "does not match its manifest", "modified")
    assert f"sha256 {actual[:12]}… ≠ recorded {recorded[:12]}…" in message


def test_tampered_optimizer_state_stops_a_resume(tmp_path):
    from support_runs import run_scripted

    with pytest.raises(KeyboardInterrupt):
        run_scripted(tmp_path / "run", crash_at=200)
    run = RunDir(tmp_path / "run")
    entry = run.checkpoint_entry(run.latest_step)
    optimizer_file = run.resolve_inside(entry["optimizer"])
    data = bytearray(optimizer_file.read_bytes())
    data[-1] ^= 0xFF
    optimizer_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match=f"{optimizer_file}.*does not match its manifest"):
        run_scripted(tmp_path / "run")
    assert RunDir(tmp_path / "run").status == "running"  # still resumable once the file is restored


# -- case 4 ----------------------------------------------------------------------------------------


def _outside_weights(tmp_path: Path) -> Path:
    """Valid weights for the run's model, outside the run: only the path check stands in the way."""
    file = tmp_path / "outside.safetensors"
    save_file({"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}, str(file))
    return file


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "meta"])
def test_manifest_path_outside_the_run_is_refused(run, tmp_path, how):
    step, path, _ = _grok(run)
    outside = _outside_weights(tmp_path)
    if how == "dotdot":
        _set_entry(run, step, path="../outside.safetensors", sha256=sha256_file(outside))
        needles = ["'../outside.safetensors'", "outside the run directory; refused"]
    elif how == "absolute":
        _set_entry(run, step, path=str(outside), sha256=sha256_file(outside))
        needles = [repr(str(outside)), "absolute or invalid path", "refused"]
    elif how == "symlink":  # the manifest's path is fine, but the file there links out of the run
        path.unlink()
        path.symlink_to(outside)
        _set_entry(run, step, sha256=sha256_file(outside))
        needles = [f"'checkpoints/{step:08d}/model.safetensors'", "outside the run directory; refused"]
    else:
        _set_entry(run, step, meta="../../../etc/passwd")
        with pytest.raises(UnsafePathError, match="'../../../etc/passwd', which is outside the run directory; refused"):
            RunDir(run).checkpoint_meta(step)
        return
    with pytest.raises(UnsafePathError) as info:
        grokplug.request_checkpoint(run, "grok")
    for needle in needles:
        assert needle in str(info.value)
    _loads_nothing(run, UnsafePathError, *needles)


# -- case 5 ----------------------------------------------------------------------------------------


def test_future_manifest_format_is_refused_and_left_alone(run, capsys):
    edit_manifest(run, lambda m: m.update(format_version=2))
    before = tree_state(run, ignore=(".lock", ".lock.owner"))
    for attempt in (lambda: RunDir(run), lambda: grokplug.request_checkpoint(run, "grok"), lambda: grokplug.GrokTracker(run)):
        with pytest.raises(FormatVersionError) as info:
            attempt()
        message = str(info.value)
        assert str(run / "manifest.json") in message and "format version 2" in message
        assert "reads up to version 1" in message and "upgrade grokplug" in message
    capsys.readouterr()
    assert main(["inspect", str(run)]) == 1
    assert_one_line_error(capsys.readouterr().err, "format version 2", "upgrade grokplug")
    assert tree_state(run, ignore=(".lock", ".lock.owner")) == before  # a resume attempt did not rewrite the newer run


# -- case 6 ----------------------------------------------------------------------------------------


def test_checkpoint_for_another_architecture_lists_keys_and_shapes(run):
    step, path, _ = _grok(run)
    for model, needles in (
        (torch.nn.Sequential(torch.nn.Linear(4, 5)), ["missing from checkpoint (2): 0.bias; 0.weight", "not in model (2): bias; weight"]),
        (torch.nn.Linear(4, 5), ["shape mismatch (2): bias: checkpoint (3,) vs model (5,); weight: checkpoint (3, 4) vs model (5, 4)"]),
        (torch.nn.Linear(4, 3, bias=False), ["not in model (1): bias"]),
    ):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(ArchitectureMismatchError) as info:
            grokplug.load_checkpoint(model, run, "grok")
        message = str(info.value)
        assert f"checkpoint {path} (grok, step {step}) does not fit" in message
        for needle in needles:
            assert needle in message
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded


# -- case 7 ----------------------------------------------------------------------------------------


def test_grok_from_a_run_that_never_grokked_names_the_label_and_fallback(scripted_memorized_run):
    with pytest.raises(NoGrokError) as info:
        grokplug.request_checkpoint(scripted_memorized_run, "grok")
    message = str(info.value)
    assert "never grokked (label: memorization" in message and "θ_grok does not exist" in message
    assert "fallback='final'" in message and "--fallback final" in message
    ref = grokplug.request_checkpoint(scripted_memorized_run, "grok", fallback="final")
    assert (ref.phase, ref.requested_phase, ref.label) == ("final", "grok", "memorization")


def test_cli_unlearn_from_a_run_that_never_grokked(memorized_preset_run, capsys):
    capsys.readouterr()
    assert main(["unlearn", str(memorized_preset_run), "--method", "ssd"]) == 1
    assert_one_line_error(capsys.readouterr().err, "never grokked (label: memorization", "--fallback final")
    assert main(["unlearn", str(memorized_preset_run), "--method", "ssd", "--fallback", "final", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["start"] == "final" and info["start_step"] == RunDir(memorized_preset_run).latest_step


# -- case 8 ----------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("kind", ["torch-zip", "pickle-protocol-4", "pickle-protocol-0", "pt-suffix"])
def test_pickle_weights_are_refused_never_loaded(run, tmp_path, monkeypatch, kind):
    step, path, _ = _grok(run)
    marker = tmp_path / "pickle-was-executed"
    payload = {"weight": _Payload(marker), "bias": torch.zeros(3)}
    target = path
    if kind == "torch-zip":
        torch.save(payload, path)
    elif kind == "pickle-protocol-4":
        path.write_bytes(pickle.dumps(payload, protocol=4))
    elif kind == "pickle-protocol-0":  # text pickle: no magic bytes to sniff; the safetensors parser rejects it
        path.write_bytes(pickle.dumps({"weight": _Payload(marker)}, protocol=0))
    else:
        target = path.with_name("model.pt")
        torch.save(payload, target)
        _set_entry(run, step, path=f"checkpoints/{step:08d}/model.pt")
    _set_entry(run, step, sha256=sha256_file(target))  # the hash agrees: only the format check is left
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load was called"))
    needles = [str(target)]
    if kind == "pickle-protocol-0":
        needles += ["not a readable safetensors file"]
    else:
        needles += ["refusing to load", "never loads weights through pickle"]
    _loads_nothing(run, CheckpointIntegrityError, *needles)
    assert not marker.exists()
