"""The house's shape, checked: no import circle inside either package (layers: `lint-imports`).

`make lint` runs import-linter over the contracts in pyproject.toml (arrows point down, the emulator
and the product import nothing of each other); this test adds what no contract type says: no module
reaches itself through its imports, TYPE_CHECKING imports included, in `replicator` or in `sfemu`.
"""

from __future__ import annotations

import grimp
import pytest


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


@pytest.mark.parametrize("package", ["replicator", "sfemu"])
def test_no_import_circle(package: str) -> None:
    assert circles(grimp.build_graph(package, cache_dir=None)) == []


def test_circle_finder_sees_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_jobs_open_the_configured_store_with_its_key() -> None:
    """A job that builds `Repository(config.storage.path)` opens an encrypted store without its key
    and fails (GDPR did, once): jobs go through `Repository.for_storage(config.storage)`."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "replicator"
    keyless = {"audit.py",  # the audit log beside the store is plain by design
               "encryption.py",  # `store encrypt` opens the plain store to encrypt it
               "automations.py"}  # its journal beside the store must switch automations back on keyless
    offenders = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
                 if "Repository(config.storage.path)" in p.read_text(encoding="utf-8")
                 and str(p.relative_to(root)) not in keyless]
    assert offenders == [], offenders
