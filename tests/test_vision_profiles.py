"""Per-preset method profiles (profile "auto") and the one-line note when forget accuracy barely moved."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grokplug._advice import BARELY_MOVED, barely_moved_note, note_for_result
from grokplug._unlearning_method import resolve_profile
from grokplug.cli import main
from grokplug.plugins import GrokplugPluginManager
from grokplug.vision.methods import PRESET_PROFILES

ITERATIVE = ["ft", "ga", "rl", "graddiff", "l1-sparse", "salun", "scrub", "nabla-tau"]


def test_profiles_use_each_presets_own_training_learning_rate(pm: GrokplugPluginManager) -> None:
    for preset, profile in PRESET_PROFILES.items():
        config = pm.presets.get(preset).resolve_config()
        if profile:  # the documented rule: Adam at the preset's training lr, no weight decay
            assert profile == {"optimizer": "adam", "lr": config["lr"], "weight_decay": 0.0}
    assert set(PRESET_PROFILES) >= {"modular", "modular-transformer", "digits", "digits-noisy", "digits-noisy-cnn"}


@pytest.mark.parametrize("name", ITERATIVE)
def test_auto_resolves_to_the_runs_preset(pm: GrokplugPluginManager, name: str) -> None:
    method = pm.methods.get(name)
    assert resolve_profile(method, "auto", "modular") == "modular"
    assert resolve_profile(method, "auto", "no-such-preset") == "offline"
    assert resolve_profile(method, "auto", None) == "offline"
    assert resolve_profile(method, "cifar", "modular") == "cifar"  # an explicit profile is kept
    params = method.hyperparameters("modular")
    assert params["optimizer"] == "adam" and params["lr"] == 1e-2 and params["weight_decay"] == 0.0
    assert method.hyperparameters("offline")["optimizer"] == "sgd"


def test_llm_methods_resolve_auto_to_offline(pm: GrokplugPluginManager) -> None:
    npo = pm.methods.get("npo")
    assert resolve_profile(npo, "auto", "tofu-tiny") == "offline"
    assert npo.hyperparameters("auto") == npo.hyperparameters("offline")


class _Iterative:
    name, iterative, strength_param = "ga", True, None


class _OneShot:
    name, iterative, strength_param = "ssd", False, "selection_weighting"


def test_barely_moved_note_hand_cases() -> None:
    params = {"lr": 0.001, "epochs": 20}
    line = barely_moved_note(_Iterative(), 1.0, 1.0, params)
    assert line is not None and "\n" not in line
    assert "1.000 → 1.000" in line and "--set lr=<larger than 0.001>" in line and "epochs=<larger than 20>" in line
    assert barely_moved_note(_Iterative(), 1.0, 0.75, params, threshold=0.25) is None  # a drop of exactly the threshold
    assert barely_moved_note(_Iterative(), 1.0, 0.97, params) is None and BARELY_MOVED == 0.02
    assert barely_moved_note(_Iterative(), 1.0, 0.99, params) is not None  # 0.01 < 0.02
    assert barely_moved_note(_Iterative(), 0.5, 0.9, params) is not None  # went up: certainly not forgotten
    shot = barely_moved_note(_OneShot(), 0.97, 0.97, {"selection_weighting": 10.0})
    assert shot is not None and "larger than" not in shot  # SSD is stronger at *lower* α: no fixed direction
    assert "selection_weighting" in shot and "--sweep" in shot
    assert barely_moved_note(_Iterative(), None, 1.0, params) is None
    # the result-dict form: nothing to say when the target already held at the start
    info: dict[str, Any] = {"start_metrics": {"forget_acc": 1.0}, "forget_acc": 1.0, "hparams": params}
    assert note_for_result(_Iterative(), info) is not None
    assert note_for_result(_Iterative(), {**info, "met_at_start": True}) is None


def test_first_ga_command_on_modular_is_not_a_no_op(modular_run_dir: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's command: `grokplug unlearn RUN --method ga --start grok --forget-rate 0.15`."""
    argv = ["unlearn", str(modular_run_dir), "--method", "ga", "--start", "grok", "--forget-rate", "0.15"]
    assert main([*argv, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["profile"] == "modular" and info["hparams"]["optimizer"] == "adam"
    assert info["forget_acc"] < info["start_metrics"]["forget_acc"] - 0.01  # it moved
    assert info["steps_to_target"] is not None and info["note"] is None
    # the offline profile (SGD lr 1e-3) leaves θ_grok untouched, and the CLI says so in one line
    assert main([*argv, "--profile", "offline"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "barely moved" in notes[0] and "--set lr=" in notes[0]
