"""Layers of the package, read from its source: the core imports no domain, domains do not import each other,
nothing below the CLI imports the CLI, no two modules import each other (directly or round a cycle), no private
name crosses modules, and no module grows past MAX_LINES.

The layer rules read the static graph (also ``TYPE_CHECKING`` imports and module names given as strings): a core
module must not even name a domain. Cycles are looked for in the runtime graph only (a ``TYPE_CHECKING`` import
never runs). ``grokplug.analysis`` is core: the run's domain hands it what it measures (``UnlearningDomain.analysis_data``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from import_graph import PACKAGES, ROOT, cycles, graph, module_files, private_imports

DOMAINS = ("grokplug.vision", "grokplug.llm")
#: the most lines a module under grokplug/, hooks/ or adapters/ may have (the aim is ~300)
MAX_LINES = 320
#: private names still imported across modules, each with its reason (empty this when the reason goes)
ALLOWED_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def _is_core(module: str) -> bool:
    """The package itself, grokplug/_*.py, plugins.py, compare/ and analysis/: the domain-neutral core."""
    rest = module.removeprefix("grokplug.")
    return module == "grokplug" or rest.startswith("_") or rest == "plugins" or rest.split(".")[0] in ("compare", "analysis")


def _domain(module: str) -> str | None:
    return next((d for d in DOMAINS if module == d or module.startswith(d + ".")), None)


def test_the_graph_sees_function_level_imports():
    edges = graph()
    # grokplug.vision.domain imports grokplug._domain at module level; compare's cells import the orchestrator inside a function
    assert "grokplug._domain" in edges["grokplug.vision.domain"]
    assert "grokplug._unlearn" in edges["grokplug.compare._matrix"]
    assert "grokplug.vision.metrics" in edges["grokplug.hooks.vision"]  # an import inside a hook implementation


def test_the_static_graph_sees_type_checking_imports_and_lazy_tables():
    runtime, static = graph(), graph(static=True)
    # hooks/specs.py imports grokplug._detect only for the type checker; grokplug/__init__.py names its modules in _LAZY
    assert "grokplug._detect" in static["grokplug.hooks.specs"] and "grokplug._detect" not in runtime["grokplug.hooks.specs"]
    assert "grokplug._unlearn" in static["grokplug"] and "grokplug._unlearn" not in runtime["grokplug"]


def test_the_core_imports_no_domain():
    edges = graph(static=True)
    core = [m for m in edges if _is_core(m)]
    assert {"grokplug", "grokplug._unlearn", "grokplug.plugins", "grokplug.compare", "grokplug.analysis._run"} <= set(core)
    bad = sorted((m, t) for m in core for t in edges[m] if _domain(t))
    assert bad == []


def test_sibling_domains_do_not_import_each_other():
    edges = graph(static=True)
    bad = sorted((m, t) for m in edges for t in edges[m] if _domain(m) and _domain(t) and _domain(m) != _domain(t))
    assert bad == []


def test_nothing_below_the_cli_imports_it():
    edges = graph(static=True)
    # grokplug/__main__.py is above the CLI: it is `python -m grokplug`, the CLI's other entry point
    assert sorted(m for m in edges if "grokplug.cli" in edges[m]) == ["grokplug.__main__"]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_can_fail():
    """The same checks on a graph with the faults they look for (independent of the real tree)."""
    faulty = {"grokplug._unlearn": {"grokplug.vision.data"}, "grokplug.vision.data": {"grokplug.llm.qa"},
              "grokplug.llm.qa": {"grokplug._unlearn"}}
    assert cycles(faulty) == [["grokplug._unlearn", "grokplug.llm.qa", "grokplug.vision.data"]]
    assert _is_core("grokplug._unlearn") and _domain("grokplug.vision.data") == "grokplug.vision"
    assert _is_core("grokplug") and _is_core("grokplug.analysis._run") and not _is_core("grokplug.vision.domain")


def test_no_private_name_crosses_modules(tmp_path, monkeypatch):
    assert sorted(set(private_imports()) - ALLOWED_PRIVATE_IMPORTS) == []
    # the scan sees one when there is one: a two-module package where a.py takes b's private name
    import import_graph

    (tmp_path / "a.py").write_text("from .b import _hidden, shown\n")
    (tmp_path / "b.py").write_text("_hidden = shown = 1\n")
    monkeypatch.setattr(import_graph, "module_files", lambda: {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"})
    assert import_graph.private_imports() == [("pkg.a", "pkg.b", "_hidden")]


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_no_module_is_over_max_lines(folder: str):
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in sorted((ROOT / folder).rglob("*.py"))}
    assert sizes and sorted((path, n) for path, n in sizes.items() if n > MAX_LINES) == []


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_examples_use_public_names_only(path: Path):
    """No ``grokplug._private`` module and no ``_private`` name imported from grokplug."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grokplug"):
            parts = node.module.split(".")  # type: ignore[union-attr]
            bad += [node.module for p in parts if p.startswith("_")]
            bad += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.startswith("grokplug") and any(p.startswith("_") for p in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "grokplug":
                bad.append(ast.unparse(node))
    assert bad == []


def test_every_module_is_in_the_graph():
    files = module_files()
    assert "grokplug.hooks.specs" in files and "grokplug.adapters.trainer" in files and "grokplug._unlearn" in files
