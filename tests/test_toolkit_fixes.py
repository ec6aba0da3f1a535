"""from_toolkit on a broken checkout: one line naming the toolkit's own failing import, and in-memory
patches through prepare= (no file of the checkout is touched).

The checkouts here are written by the test with the *structure* of the real failures (Unlearn-Saliency
main: ``trainer/__init__.py`` imports ``train_with_rewind`` that ``trainer/train.py`` lacks; SSD's
``ssd.py`` imports ``wandb`` it never uses); no third-party code is copied."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from grokplug._atomic import sha256_file
from grokplug.adapters import ToolkitImportError, from_toolkit, load_toolkit, patch_module, stub_module


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def broken_optml(root: Path) -> Path:
    return _write(root, {
        "utils.py": "SCALE = 0.5\n",
        "trainer/__init__.py": "from .train import train, train_with_rewind\n",
        "trainer/train.py": "import utils\n\ndef train(*args, **kwargs):\n    return utils.SCALE\n",
        "unlearn/__init__.py": """\
            from .retrain import retrain
            import torch

            def half(data_loaders, model, criterion, args, mask=None):
                import utils
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(utils.SCALE)

            def get_unlearn_method(name):
                if name == "half":
                    return half
                raise NotImplementedError(name)
            """,
        "unlearn/retrain.py": "from trainer import train\n\ndef retrain(*args):\n    return train()\n",
    })  # fmt: skip


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): sha256_file(p) for p in sorted(root.rglob("*.py"))}


def test_broken_checkout_is_one_line_naming_the_name_and_where(tmp_path):
    root = broken_optml(tmp_path / "Classification")
    with pytest.raises(ToolkitImportError) as info:
        from_toolkit(root, "half")
    message = str(info.value)
    assert "\n" not in message
    assert "cannot import name 'train_with_rewind' from 'trainer.train'" in message
    assert "at trainer/__init__.py:1" in message and "prepare=" in message
    assert "trainer" not in sys.modules and "utils" not in sys.modules  # isolation undone


def test_prepare_patches_in_memory_and_the_method_runs(tmp_path):
    root = broken_optml(tmp_path / "Classification")
    before = _hashes(root)

    def add_train_with_rewind(toolkit):
        patch_module(toolkit, "trainer.train", train_with_rewind=None)

    adapter = from_toolkit(root, "half", prepare=add_train_with_rewind)
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(4.0)
    data = type("Data", (), {"retain": [], "forget": [], "val": [], "test": [], "num_classes": 2})()
    adapter.run(model, data)
    assert torch.all(model.weight == 2.0)  # the toolkit's own utils.SCALE = 0.5, applied at call time
    assert adapter.toolkit["trainer"].train_with_rewind is None
    assert _hashes(root) == before and "trainer" not in sys.modules


def test_an_already_loaded_toolkit_is_used_as_is(tmp_path):
    root = broken_optml(tmp_path / "Classification")
    toolkit = load_toolkit(root, "unlearn", prepare=lambda tk: patch_module(tk, "trainer.train", train_with_rewind=1))
    adapter = from_toolkit(toolkit, "half")
    assert adapter.toolkit is toolkit
    assert adapter.target is toolkit["unlearn"].get_unlearn_method("half")


def test_missing_unused_dependency_is_named_and_can_be_stubbed(tmp_path):
    root = _write(tmp_path / "src", {"ssd.py": "import torch\nimport wandb_not_installed_here\n\nLAMBDA = 1\n"})
    with pytest.raises(ToolkitImportError, match=r"at ssd.py:2: No module named 'wandb_not_installed_here'.*stub_module"):
        load_toolkit(root, "ssd")
    toolkit = load_toolkit(root, "ssd", prepare=lambda tk: stub_module(tk, "wandb_not_installed_here"))
    assert toolkit["ssd"].LAMBDA == 1
    assert "wandb_not_installed_here" not in sys.modules  # the stand-in lives only inside the isolation
    with toolkit.active():
        assert sys.modules["wandb_not_installed_here"].__doc__.startswith("stand-in")
        # availability probes (transformers' find_spec checks) see a module, they do not raise
        assert importlib.util.find_spec("wandb_not_installed_here").name == "wandb_not_installed_here"
