"""The emulator's import graph: no circles between its modules or its subpackages, nothing of Replicator.

Circles come back quietly (a lazy import inside a function, a TYPE_CHECKING import for a type
hint), so every import statement in the source counts here, wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sfemu

ROOT = Path(sfemu.__file__).parent


def _module_name(path: Path) -> str:
    parts = ("sfemu", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of sfemu -> the modules (or packages) it names in any import statement."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = found
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def _top(module: str) -> str:
    """The room a module lives in: `sfemu.dml.engine` -> `sfemu.dml`, `sfemu.org` -> `sfemu.org`."""
    return ".".join(module.split(".")[:2])


def test_no_module_imports_another_in_a_circle() -> None:
    graph = {m: {d for d in deps if d.startswith("sfemu")} for m, deps in _imports().items()}
    assert _circles(graph) == []


def test_no_subpackage_imports_another_in_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for module, deps in _imports().items():
        graph.setdefault(_top(module), set()).update(
            _top(d) for d in deps if d.startswith("sfemu.") and _top(d) != _top(module)
        )
    assert _circles(graph) == []


def test_the_emulator_imports_nothing_of_replicator() -> None:
    users = sorted(m for m, deps in _imports().items() if any(d.split(".")[0] == "replicator" for d in deps))
    assert users == []
