"""The paper-regime presets: their data, and the shape `grokplug inspect --json` reports on seed 0."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

import grokplug
from grokplug.cli import main
from grokplug.presets.digits_regime import DigitsCNN, flip_labels, make_noisy_digits_data

REGIME = ("digits-noisy", "digits-noisy-cnn")


def test_flip_labels_moves_exactly_the_chosen_fraction_to_other_classes() -> None:
    labels = torch.arange(200) % 10
    noisy, flipped = flip_labels(labels, 0.2, 10, seed=3)
    assert len(flipped) == 40 and flipped == sorted(set(flipped))
    changed = (noisy != labels).nonzero().flatten().tolist()
    assert changed == flipped  # every flipped label moved to another class, nothing else moved
    assert torch.equal(flip_labels(labels, 0.2, 10, seed=3)[0], noisy)  # seeded
    assert not torch.equal(flip_labels(labels, 0.2, 10, seed=4)[0], noisy)
    with pytest.raises(ValueError, match="label_noise"):
        flip_labels(labels, 1.0, 10, seed=0)


def test_noisy_digits_keep_clean_validation_labels() -> None:
    preset = grokplug.get_plugin_manager().presets.get("digits-noisy")
    config = preset.resolve_config()
    data = make_noisy_digits_data(config, seed=0)
    clean = make_noisy_digits_data({**config, "label_noise": 0.0}, seed=0)
    assert torch.equal(data.val_y, clean.val_y) and torch.equal(data.train_x, clean.train_x)
    wrong = int((data.train_y != clean.train_y).sum())
    assert wrong == round(config["label_noise"] * config["n_train"]) == data.info["n_flipped"]


def test_cnn_is_a_cnn_and_scales_its_init() -> None:
    torch.manual_seed(0)
    base = DigitsCNN(4, 8)
    torch.manual_seed(0)
    scaled = DigitsCNN(4, 8, init_scale=3.0)
    assert isinstance(base.conv1, torch.nn.Conv2d) and base(torch.zeros(2, 64)).shape == (2, 10)
    assert torch.allclose(scaled.conv1.weight, 3.0 * base.conv1.weight)


@pytest.fixture(scope="module", params=REGIME)
def regime_seed0(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    path = tmp_path_factory.mktemp("regime") / request.param
    assert main(["train", request.param, "--run-dir", str(path), "--no-progress", "--seed", "0"]) == 0
    return request.param, path


#: seed 0's smoothed val drop below its early peak, as measured. The float results of training differ
#: between CPUs: the MLP's drop was 0.083 on the machine its recipe was tuned on and 0.078 on an AMD EPYC
#: VM (peak 0.723 both times), either side of the shape's drop_min 0.08. The CNN's: 0.090 and 0.091.
MEASURED_DROP = {"digits-noisy": 0.080, "digits-noisy-cnn": 0.090}
CPU_TOLERANCE = 0.01


@pytest.mark.slow
def test_seed0_shows_peak_and_decline(regime_seed0: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """What the recipes reach: an early peak in [0.3, 0.85], then the measured fall while train >= 0.98.

    The shape label must agree with the drop: ``peak-decline`` at drop_min 0.08 or more, ``plateau`` below.
    """
    name, path = regime_seed0
    capsys.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    n = info["shape_numbers"]
    drop = n["peak_val"] - n["trough_val"]
    assert 0.3 <= n["peak_val"] <= 0.85 and n["train_at_trough"] >= 0.98, n
    assert drop == pytest.approx(MEASURED_DROP[name], abs=CPU_TOLERANCE), n
    assert info["shape"].startswith("peak-decline" if drop >= 0.08 else "plateau"), (info["shape"], n)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="no recipe found yet rises to peak + 0.10 after the decline (preset docstring)")
def test_seed0_is_peak_decline_grok(regime_seed0: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's full criterion; strict: a recipe that meets it turns this into a failure to update."""
    _, path = regime_seed0
    capsys.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["label"] == "grokking" and info["shape"] == "peak-decline-grok", info["reasons"]
    assert info["grok_step"] >= 3 * info["pre_step"]


def test_training_flushes_denormals_only_while_it_runs(tmp_path):
    """digits-noisy trains with denormals flushed (a ~10x CPU speed-up under heavy weight decay), but the
    setting is process-wide: it must be off again for the caller's code (hypothesis, for one, refuses it)."""
    import torch

    from grokplug import train_preset

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a float32 denormal
    assert (tiny * 1.0).item() != 0.0
    train_preset("digits-noisy", tmp_path / "run", max_steps=20, progress=False)
    assert (tiny * 1.0).item() != 0.0, "flush-to-zero was left on after training"
