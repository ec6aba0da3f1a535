"""`grokplug export`: θ as a directory other toolkits load without grokplug, weights equal to the checkpoint's."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import grokplug
from grokplug._atomic import sha256_file
from grokplug.cli import main
from grokplug.errors import UsageError


def _hashes(run_dir):
    return {str(p): sha256_file(p) for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_llm_export_loads_with_plain_transformers(tofu_tiny_run_dir, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tofu_tiny_run_dir
    before = _hashes(run)
    out = tmp_path / "theta"
    assert main(["export", str(run), "--start", "final", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = grokplug.request_checkpoint(run, "final")
    assert ref.step > 0  # trained weights, not the seeded initialisation build_model reproduces
    assert (info["phase"], info["step"], info["source_sha256"], info["format"]) == ("final", ref.step, ref.sha256, "hf")
    assert info["source_run"] == str(run.resolve())
    assert info["files"]["model.safetensors"] == sha256_file(out / "model.safetensors")

    model = AutoModelForCausalLM.from_pretrained(str(out))  # no grokplug involved
    checkpoint = load_file(ref.path)
    state = model.state_dict()
    assert set(checkpoint) <= set(state)
    for name, tensor in checkpoint.items():
        assert torch.equal(state[name], tensor), name
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    run_tokenizer = AutoTokenizer.from_pretrained(str(run / "tokenizer"))
    text = "Question: Who wrote it?\nAnswer: "
    assert tokenizer(text)["input_ids"] == run_tokenizer(text)["input_ids"]
    assert _hashes(run) == before  # the source run is only read


def test_vision_export_is_a_state_dict_with_the_architecture(modular_run_dir, tmp_path):
    from grokplug.presets.modular import ModularMLP

    out = grokplug.export_checkpoint(modular_run_dir, tmp_path / "grok", "grok")
    info = json.loads((out / "grokplug_export.json").read_text())
    ref = grokplug.request_checkpoint(modular_run_dir, "grok")
    assert info["step"] == ref.step and info["format"] == "state_dict" and info["preset"] == "modular"
    tensors = load_file(out / "model.safetensors")  # plain safetensors
    source = load_file(ref.path)
    assert tensors.keys() == source.keys() and all(torch.equal(tensors[k], source[k]) for k in source)
    assert info["architecture"]["class"] == f"{ModularMLP.__module__}.ModularMLP"
    model = grokplug.build_model(modular_run_dir)
    assert info["architecture"]["module_tree"] == repr(model)
    model.load_state_dict(tensors, strict=True)  # what a toolkit does with the recorded architecture


def test_export_refuses_to_overwrite(modular_run_dir, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists"):
        grokplug.export_checkpoint(modular_run_dir, out, "pre")
    assert main(["export", str(modular_run_dir), "--start", "pre", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never overwrites" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken.")]  # no temporary left behind


def test_export_of_a_missing_phase_leaves_nothing(modular_run_dir, tmp_path, capsys):
    assert main(["export", str(modular_run_dir), "--start", "nonsense", "--out", str(tmp_path / "x")]) == 2
    assert "unknown phase" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_export_never_writes_into_the_source_run(modular_run_dir, capsys):
    before = _hashes(modular_run_dir)
    inside = modular_run_dir / "exports" / "grok"
    assert main(["export", str(modular_run_dir), "--out", str(inside)]) == 2
    assert "never writes into a source run" in capsys.readouterr().err
    assert not (modular_run_dir / "exports").exists() and _hashes(modular_run_dir) == before
