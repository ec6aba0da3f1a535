"""The examples run end to end: the decorator example, and examples/vision.py offline and on CIFAR-format data."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"grokplug_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_decorate_existing_script(modular_run_dir):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "decorate_existing_script.py"), "--run-dir", str(modular_run_dir)],
        capture_output=True, text=True, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["start", "step", "forget"]
    assert [line.split()[0] for line in lines[1:]] == ["pre", "grok"]


def test_vision_offline_prints_the_table(digits_run_dir, capsys):
    vision = load_example("vision")
    assert vision.main(["--run-dir", str(digits_run_dir), "--methods", "ft,ga,rl,ssd"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in {"ft", "ga", "rl", "ssd"}]
    assert [(r[0], r[1]) for r in rows] == [(m, s) for m in ("ft", "ga", "rl", "ssd") for s in ("pre", "grok")]
    for column in ("steps_to_target", "forget_acc", "retain_acc", "test_acc", "mia_svc_efficacy", "mia_loss_lr"):
        assert column in out
    assert "n/a (one-shot)" in out  # ssd


def write_fake_cifar10(root: Path, per_batch: int = 24, seed: int = 0) -> None:
    """CIFAR-10's python format (cifar-10-batches-py/*), with a few random images per batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = [int(i % 10) for i in range(per_batch)]
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, fh)


def test_vision_torchvision_path_on_cifar_format_stand_in(tmp_path, monkeypatch, capsys):
    import torchvision

    write_fake_cifar10(tmp_path / "data")
    # the stand-in has CIFAR-10's layout but not its bytes, so only the md5 check is bypassed
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    vision = load_example("vision")
    argv = ["--dataset", "cifar10", "--arch", "resnet18", "--data-root", str(tmp_path / "data"),
            "--run-dir", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "30", "--eval-size", "60",
            "--methods", "ga,ssd", "--target", "none"]
    assert vision.main(argv) == 0
    out = capsys.readouterr().out
    assert "run " in out and [line.split()[:2] for line in out.splitlines() if line.startswith(("ga ", "ssd "))] == [
        ["ga", "pre"], ["ga", "grok"], ["ssd", "pre"], ["ssd", "grok"],
    ]


def test_vision_torchvision_path_says_what_is_missing(tmp_path, capsys):
    vision = load_example("vision")
    assert vision.main(["--dataset", "cifar10", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cifar10 is not available under" in err and "cifar-10-batches-py" in err and "download=True" in err
