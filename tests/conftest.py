"""Shared fixtures: every test gets a fresh, hermetic plugin manager."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

# Single-threaded torch keeps timing noise and CPU contention down on 2-core machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from grokplug.plugins import GrokplugPluginManager, get_plugin_manager, reset_plugin_manager  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_plugin_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees plugins installed on the machine, or another test's registrations."""
    monkeypatch.setenv("GROKPLUG_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("GROKPLUG_DISABLED_PLUGINS", "GROKPLUG_TRACE_PLUGINS", "GROKPLUG_GROKFAST", "GROKPLUG_ORTHOGRAD"):
        monkeypatch.delenv(name, raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def pm() -> GrokplugPluginManager:
    """The process-wide manager, freshly loaded with the built-ins only."""
    return get_plugin_manager()


PLUGIN_DIR = Path(__file__).parent / "plugins"


def load_sample_plugin(name: str) -> ModuleType:
    """Import ``tests/plugins/<name>.py`` by path (no generic top-level package on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"grokplug_test_plugins.{name}", PLUGIN_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sample_methods() -> ModuleType:
    return load_sample_plugin("sample_methods")


def _train_once(tmp_path_factory: pytest.TempPathFactory, preset: str) -> Path:
    """Train a preset through the CLI, once per test session; tests must only read the run."""
    from grokplug.cli import main

    path = tmp_path_factory.mktemp(f"session-{preset}") / preset
    assert main(["train", preset, "--run-dir", str(path), "--no-progress"]) == 0
    return path


@pytest.fixture(scope="session")
def modular_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `modular` run (~15 s), shared by the whole session."""
    return _train_once(tmp_path_factory, "modular")


@pytest.fixture(scope="session")
def digits_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `digits` run (~25 s), shared by the whole session."""
    return _train_once(tmp_path_factory, "digits")


@pytest.fixture(scope="session")
def tofu_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `tofu-tiny` run shrunk to ~20 s (support_llm.TOFU_TINY_TEST), shared by the session; read only."""
    from support_llm import TOFU_TINY_TEST

    from grokplug._train import train_preset

    reset_plugin_manager()
    path = tmp_path_factory.mktemp("session-tofu") / "tofu-tiny"
    train_preset("tofu-tiny", path, seed=0, overrides=TOFU_TINY_TEST, progress=False)
    reset_plugin_manager()
    return path


@pytest.fixture(scope="session")
def tofu_tiny_run_dir(tofu_run_dir: Path) -> Path:
    """The session's shrunk `tofu-tiny` run (the export and doc-snippet tests' name for it)."""
    return tofu_run_dir


@pytest.fixture(scope="session")
def hf_trainer_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object, object]:
    """A real HF Trainer output dir (tests/support_hf_run.py, ~30 s), its grokplug-tracked twin, the
    trainer and the GrokTrackerCallback; shared by the session, read only."""
    import torch
    from support_hf_run import train_hf_run

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("session-hf")
    trainer, callback = train_hf_run(root / "out", root / "tracked", max_steps=1500)
    return root / "out", root / "tracked", trainer, callback
