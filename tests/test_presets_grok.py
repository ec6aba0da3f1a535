"""Real training runs of the built-in presets: they grok, their controls don't, and the CLI shows it."""

from __future__ import annotations

import json

import pytest
import torch

import grokplug
from grokplug import hookimpl
from grokplug._rundir import RunDir
from grokplug._train import evaluate_preset
from grokplug.cli import main
from grokplug.errors import NoGrokError, PluginError


@pytest.fixture
def modular_run(modular_run_dir):
    return modular_run_dir


def test_modular_groks_and_inspect_reports_it(modular_run, capsys, tmp_path):
    capsys.readouterr()
    assert main(["inspect", str(modular_run), "--json", "--plot", str(tmp_path / "m.png")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["label"] == "grokking"
    assert info["pre_step"] < info["grok_step"] and info["grok_ratio"] >= 2
    assert info["checkpoints_kept"] <= 40
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_theta_pre_and_theta_grok_are_what_they_claim(modular_run):
    data_config = RunDir(modular_run).config
    preset = grokplug.get_plugin_manager().presets.get("modular")
    data = preset.make_data(data_config, 0)
    scores = {}
    for phase in ("pre", "pre-matched", "grok"):
        model = grokplug.build_model(modular_run)
        ref = grokplug.load_checkpoint(model, modular_run, phase)
        scores[phase] = evaluate_preset(model, data, data_config)
        assert scores[phase]["val_acc"] == pytest.approx(ref.metrics["val_acc"], abs=1e-6)  # the weights are the recorded ones
    # early-stop θ_pre need not fit the training set; matched-train θ_pre does, as θ_grok
    assert scores["pre"]["val_acc"] < 0.3
    assert scores["pre-matched"]["train_acc"] >= 0.99 and scores["pre-matched"]["val_acc"] < 0.3
    assert scores["grok"]["train_acc"] >= 0.99 and scores["grok"]["val_acc"] >= 0.95


def test_modular_no_grok_control_is_memorization(tmp_path):
    report = grokplug.train_preset("modular", tmp_path / "c", control="no-grok", progress=False)
    assert report.label == "memorization" and report.grok_step is None and report.pre_step is not None
    with pytest.raises(NoGrokError, match="label: memorization"):
        grokplug.request_checkpoint(tmp_path / "c", "grok")


def test_resume_after_a_crash_matches_the_uninterrupted_run(modular_run, tmp_path, pm):
    class CrashAt:
        @hookimpl
        def grokplug_transform_gradients(self, step):
            if step == 333:
                raise RuntimeError("simulated crash")

    pm.register(CrashAt(), name="crasher")
    with pytest.raises(PluginError, match="crasher"):
        grokplug.train_preset("modular", tmp_path / "r", progress=False)
    pm.unregister(name="crasher")
    assert RunDir(tmp_path / "r").status == "running"
    resumed = grokplug.train_preset("modular", tmp_path / "r", progress=False)
    assert resumed.to_dict() == RunDir(modular_run).report().to_dict()
    for phase in ("pre", "pre-matched", "grok"):
        a, b = grokplug.request_checkpoint(tmp_path / "r", phase), grokplug.request_checkpoint(modular_run, phase)
        # Same steps and metrics; weights are not compared bit for bit, because CPU kernels can differ in
        # the last ulp between runs in one process (seen even without any resume).
        assert a.step == b.step and a.metrics["val_acc"] == pytest.approx(b.metrics["val_acc"], abs=2e-3)


def test_digits_groks(digits_run_dir):
    report = RunDir(digits_run_dir).report()
    assert report.label == "grokking", report.reasons
    assert report.val_at_mem < 0.5 and report.val_max > 0.85


def test_digits_standard_init_control_is_comprehension(tmp_path):
    preset = grokplug.get_plugin_manager().presets.get("digits")
    report = grokplug.train_preset(preset, tmp_path / "d", control="standard-init", progress=False)
    assert report.label == preset.control_label == "comprehension", report.reasons


@pytest.mark.slow
@pytest.mark.parametrize("control", [None, "no-grok"])
def test_modular_transformer(tmp_path, control):
    preset = grokplug.get_plugin_manager().presets.get("modular-transformer")
    report = grokplug.train_preset(preset, tmp_path / "t", control=control, progress=False)
    assert report.label == (preset.control_label if control else "grokking"), report.reasons


def test_build_model_matches_checkpoint_architecture(modular_run):
    model = grokplug.build_model(modular_run)
    assert isinstance(model, torch.nn.Module)
    grokplug.load_checkpoint(model, modular_run, "final")
