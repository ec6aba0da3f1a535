"""Meta-tests: every hook is documented with its exact signature and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from grokplug import _hookdocs
from grokplug.hooks import specs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = _hookdocs.hook_names()


def test_hooks_are_prefixed_and_grouped():
    assert HOOKS, "no hook specifications found"
    assert all(re.fullmatch(r"grokplug_[a-z]+(_[a-z]+)+", name) for name in HOOKS)


def test_docs_hooks_md_is_generated_from_the_specs():
    committed = (ROOT / "docs" / "hooks.md").read_text()
    assert committed == _hookdocs.render(), "docs/hooks.md is stale: run `python -m grokplug._hookdocs > docs/hooks.md`"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_exact_signature(name):
    docs = (ROOT / "docs" / "hooks.md").read_text()
    params = ", ".join(inspect.signature(getattr(specs, name)).parameters)
    assert f"### `{name}({params})`" in docs


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_says_when_returns_and_ranks(name):
    doc = inspect.getdoc(getattr(specs, name)) or ""
    assert "Fires" in doc, f"{name}: say when it fires"
    assert ":returns:" in doc, f"{name}: say what it returns"
    assert "Distributed use:" in doc, f"{name}: say which ranks call it"
    firstresult = getattr(specs, name).grokplug_spec.get("firstresult")
    assert ("firstresult" in doc) == bool(firstresult), f"{name}: firstresult must be stated exactly when it is set"
    for param in inspect.signature(getattr(specs, name)).parameters:
        assert f":param {param}:" in doc, f"{name}: document parameter {param}"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name):
    """datasette's rule: each hook is exercised by a test named test_hook_<name>."""
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{name}\b", sources), f"write a test named test_hook_{name}"
