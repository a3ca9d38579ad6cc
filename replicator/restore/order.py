"""Parent-first order of the objects a load writes, and how its cycles are broken.

Why strongly connected components: a self lookup (Account.ParentId), two objects that look each other
up, or a longer loop cannot be ordered parent-first. Inside such a group, a reference pointing at
an object that is not yet loaded (itself included) is *deferred*: inserted empty and set by the
loader's second pass. A required reference cannot be deferred (the insert would be refused), so it
is reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from replicator.restore.model import ObjectModel


@dataclass(frozen=True)
class Cycle:
    """One group of objects that reference each other, and how the load breaks it."""

    objects: tuple[str, ...]
    deferred: tuple[str, ...]  # "Object.Field" set by the second pass
    unbreakable: tuple[str, ...] = ()  # required "Object.Field" inside the cycle

    def text(self) -> str:
        """One line for the plan."""
        line = f"cycle {' -> '.join(self.objects)}: deferred {', '.join(self.deferred) or 'none'}"
        if self.unbreakable:
            line += f"; required references inside the cycle: {', '.join(self.unbreakable)}"
        return line


@dataclass(frozen=True)
class Order:
    """Objects parent first; per object the reference fields deferred to the second pass."""

    objects: tuple[str, ...]
    deferred: dict[str, frozenset[str]] = field(default_factory=dict)
    cycles: tuple[Cycle, ...] = ()


# Records created by inserting another object's: a new ContentVersion makes its ContentDocument, so
# whatever references a document (ContentDocumentLink) loads after the versions.
MADE_BY = {"ContentDocument": "ContentVersion"}


def _edges(models: dict[str, ObjectModel], names: set[str]) -> dict[str, set[str]]:
    """Object -> the objects of the set it references (its parents), or whose inserts make them."""
    edges: dict[str, set[str]] = {}
    for name in names:
        parents = set()
        for targets, _ in models[name].references.values():
            for target in targets:
                if target in names:
                    parents.add(target)
                maker = MADE_BY.get(target)
                if maker in names and maker != name:
                    parents.add(maker)
        edges[name] = parents
    return edges


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative order is irrelevant: sorted for stability)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _inside(group: list[str], models: dict[str, ObjectModel]) -> list[str]:
    """A group's objects ordered by their required references where those allow it."""
    members = set(group)
    required = {n: {t for targets, req in models[n].references.values() if req for t in targets
                    if t in members and t != n} for n in group}
    try:
        return list(TopologicalSorter(required).static_order())
    except CycleError:
        return sorted(group)


def load_order(models: dict[str, ObjectModel], names: set[str]) -> Order:
    """The parent-first order of `names` (all described in `models`), cycles broken."""
    graph = _edges(models, names)
    groups = _components(graph)
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    after = {i: {group_of[p] for n in g for p in graph[n] if group_of[p] != i} for i, g in enumerate(groups)}
    ordered: list[str] = []
    deferred: dict[str, frozenset[str]] = {}
    cycles: list[Cycle] = []
    for i in TopologicalSorter(after).static_order():
        group = _inside(groups[i], models)
        position = {n: at for at, n in enumerate(group)}
        ordered.extend(group)
        later, stuck = [], []
        for name in group:
            fields = set()
            for fname, (targets, required) in sorted(models[name].references.items()):
                if any(t in position and position[t] >= position[name] for t in targets):
                    (stuck if required else later).append(f"{name}.{fname}")
                    if not required:
                        fields.add(fname)
            if fields:
                deferred[name] = frozenset(fields)
        if later or stuck:
            cycles.append(Cycle(tuple(group), tuple(later), tuple(stuck)))
    return Order(tuple(ordered), deferred, tuple(cycles))
