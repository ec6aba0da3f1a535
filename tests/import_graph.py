"""The package's import graph, read from the source: every import, also inside functions; with ``static=True``
also the imports under ``if TYPE_CHECKING:`` and module names given as strings (lazy ``importlib`` tables such as
``grokplug/__init__.py``'s), which name a module as surely as an import does.

Used by ``tests/test_import_graph.py``: the core never imports a domain package, sibling domains never
import each other, nothing below the CLI imports it, and there is no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> package name it is installed as
PACKAGES = {"grokplug": "grokplug", "hooks": "grokplug.hooks", "adapters": "grokplug.adapters"}


def module_files() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, static: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node) and not static:
            yield from (n for child in node.orelse for n in _imports_in(child, static))
            continue
        yield from _imports_in(node, static)


def _imports_in(node: ast.AST, static: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node) and not static:
        return
    for child in ast.iter_child_nodes(node):
        yield from _imports_in(child, static)


def _named_modules(tree: ast.AST, files: dict[str, Path]) -> set[str]:
    """String constants that are exactly a package module's dotted name (lazy import tables, ``import_module``);
    the bare package name is left out, as it is also the entry-point group's name."""
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "." in n.value and n.value in files}


def private_imports() -> list[tuple[str, str, str]]:
    """``(importer, module, name)`` for every ``from module import _name`` across package modules (not submodules)."""
    files = module_files()
    out = []
    for name, path in files.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            pkg = base
            for _ in range(node.level - 1):
                pkg = pkg.rpartition(".")[0]
            mod = (f"{pkg}.{node.module}" if node.module else pkg) if node.level else (node.module or "")
            if mod not in files:
                continue
            out += [(name, mod, a.name) for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__") and f"{mod}.{a.name}" not in files]
    return sorted(out)


def graph(*, static: bool = False) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import name`` counts as ``pkg.name`` when that is a module).

    ``static=False``: what runs (no ``TYPE_CHECKING`` block): the graph cycles are looked for in. ``static=True``: every
    module a file names, also for the type checker or as a string: the graph the layer rules are checked on.
    """
    files = module_files()
    edges: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        base = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        if static:
            edges[name] |= _named_modules(tree, files) - {name}
        for node in _imports(tree, static):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                pkg = base
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                mod = (f"{pkg}.{node.module}" if node.module else pkg) if node.level else (node.module or "")
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    g = graph()
    for comp in cycles(g):
        print("cycle:", comp)
