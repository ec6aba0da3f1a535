"""Every code snippet in README.md and docs/*.md runs, so the docs cannot drift from the API.

Python blocks: checked statically (every name a block uses is defined in the block, imported, or a
builtin; no private name, ``_x`` or a ``grokplug._module``, is used), then executed, each on its own, in
a workspace holding tiny real runs (``runs/m`` modular, ``runs/d`` digits, ``runs/tofu`` a shrunk
tofu-tiny, ``my_output_dir`` an HF Trainer output dir) and stand-in toolkit checkouts
(``tests/support_toolkits.py``). Shell blocks: every ``grokplug ...`` line must parse; ``train`` lines
naming a built-in preset run (with a small ``--max-steps``), and ``inspect``/``export``/``plugins`` lines
run against the workspace. docs/hooks.md is generated from the hook specifications (its blocks are
signatures, checked by test_hook_contract.py) and is left out.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from support_toolkits import write_checkouts

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "hooks.md")]
PRESETS = {"modular", "digits", "modular-transformer", "tofu-tiny"}
RUNNABLE = {"inspect", "export", "plugins"}
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[tuple[str, str]]:
    """``(id, code)`` of every fenced block in ``lang``; id = ``file:line``."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for match in _FENCE.finditer(text):
            if match.group(1) == lang:
                line = text[: match.start()].count("\n") + 1
                out.append((f"{doc.relative_to(ROOT)}:{line}", match.group(2)))
    return out


PYTHON = blocks("python")
SHELL = [
    (f"{where}+{i}", line.strip())
    for where, code in blocks("bash")
    for i, line in enumerate(code.replace("\\\n", " ").splitlines())
    if line.strip().startswith("grokplug ")
]


class _Names(ast.NodeVisitor):
    """Names a block binds and loads (flow-insensitive: a block is read as one script)."""

    def __init__(self) -> None:
        self.bound: set[str] = set(dir(builtins)) | {"__name__", "__file__"}
        self.loaded: list[tuple[str, int]] = []
        self.private: list[str] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.bound.add(node.id)
        else:
            self.loaded.append((node.id, node.lineno))

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)

    def _define(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.bound.add(node.name)
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _define

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.bound.add((alias.asname or alias.name).split(".")[0])
            self._check_module(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._check_module(node.module or "")
        for alias in node.names:
            self.bound.add(alias.asname or alias.name)
            if alias.name.startswith("_"):
                self.private.append(f"{node.module}.{alias.name}")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr.endswith("__")):
            self.private.append(f".{node.attr}")
        self.generic_visit(node)

    def _check_module(self, module: str) -> None:
        if module.split(".")[0] == "grokplug" and any(part.startswith("_") for part in module.split(".")):
            self.private.append(module)


def check_names(code: str) -> list[str]:
    """Problems of one block: undefined names and private names."""
    visitor = _Names()
    visitor.visit(ast.parse(code))
    undefined = sorted({f"{name} (line {line})" for name, line in visitor.loaded if name not in visitor.bound})
    return [f"undefined name {u}" for u in undefined] + [f"private name {p}" for p in visitor.private]


def test_the_checker_catches_undefined_and_private_names():
    assert check_names("import grokplug\nprint(grokplug.unlearn)") == []
    assert check_names("result = grokplug.unlearn('ga')") == ["undefined name grokplug (line 1)"]
    assert check_names("from grokplug._resolve import load_into") == ["private name grokplug._resolve"]
    assert check_names("import grokplug\ngrokplug.plugins._one_line(1)") == ["private name ._one_line"]
    assert check_names("def f(model, data=None):\n    return model, data\nx = [y for y in range(3)]\nf(x)") == []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, modular_run_dir, digits_run_dir, tofu_tiny_run_dir, hf_trainer_output):
    root = tmp_path_factory.mktemp("docs")
    (root / "runs").mkdir()
    for name, target in (("m", modular_run_dir), ("d", digits_run_dir), ("tofu", tofu_tiny_run_dir)):
        (root / "runs" / name).symlink_to(target, target_is_directory=True)
    (root / "my_output_dir").symlink_to(hf_trainer_output[0], target_is_directory=True)
    write_checkouts(root)
    return root


@pytest.mark.parametrize("where,code", PYTHON, ids=[w for w, _ in PYTHON])
def test_python_snippet_defines_what_it_uses(where, code):
    assert check_names(code) == [], where


@pytest.mark.parametrize("where,code", PYTHON, ids=[w for w, _ in PYTHON])
def test_python_snippet_runs(where, code, workspace, monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.chdir(workspace)
    modules_before, path_before = set(sys.modules), list(sys.path)
    try:
        exec(compile(code, where, "exec"), {"__name__": "__doc_snippet__"})  # noqa: S102 - our own docs
    finally:
        sys.path[:] = path_before
        for name in set(sys.modules) - modules_before:  # e.g. OU's `trainer` package, put on sys.path by a block
            if name.split(".")[0] in {"trainer", "data", "model", "evals", "utils", "ssd"}:
                del sys.modules[name]


@pytest.mark.parametrize("where,line", SHELL, ids=[w for w, _ in SHELL])
def test_shell_command_parses_and_preset_commands_run(where, line, workspace, tmp_path, monkeypatch, capsys):
    from grokplug.cli import build_parser, main

    argv = shlex.split(line.split(" #")[0])[1:]
    argv = [a for a in argv if a not in ("[--json]",)]
    build_parser().parse_args(argv)  # a renamed flag or subcommand fails here
    if argv[0] == "train" and argv[1] in PRESETS:
        monkeypatch.chdir(tmp_path)  # a fresh run dir: train refuses to overwrite a finished run
        assert main([*argv, "--max-steps", "20", "--no-progress"]) == 0, capsys.readouterr().err
    elif argv[0] in RUNNABLE:
        monkeypatch.chdir(workspace)
        assert main(argv) == 0, capsys.readouterr().err


def test_every_doc_has_been_read():
    assert len(PYTHON) >= 15 and len(SHELL) >= 10, (len(PYTHON), len(SHELL))
    assert os.path.basename(DOCS[0]) == "README.md"
