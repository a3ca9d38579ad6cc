"""The order a seed inserts its objects in, and which lookups wait for a second pass.

Why a function of its own: parents must exist before their children point at them, but real orgs
have self lookups (Account.ParentId) and cycles (Region -> primary Office -> Region). A self lookup
is always inserted empty and set afterwards; in a cycle, one nillable lookup is deferred and the
rest is ordered again. A cycle made only of required lookups has no first record: it is an error.
"""

from __future__ import annotations

__all__ = ["Edge", "RequiredCycle", "load_order"]

Edge = tuple[str, str, bool]  # (lookup field, referenced object, required)


class RequiredCycle(ValueError):
    """Lookups that must all be set on insert point round in a circle."""


def load_order(edges: dict[str, list[Edge]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Objects parents first, and the (object, field) lookups deferred to the second pass.

    `edges` holds, per object, its lookups to objects of the same seed.
    """
    deferred = {(o, f) for o, es in edges.items() for f, t, _ in es if t == o}
    for o, f in sorted(deferred):
        if any(req for ff, _, req in edges[o] if ff == f):
            raise RequiredCycle(f"{o}.{f} is a required lookup to its own object: no record could be "
                                "inserted first")
    while True:
        done: list[str] = []
        left = set(edges)
        while left:
            ready = sorted(o for o in left if all(t not in left or t == o or (o, f) in deferred
                                                  for f, t, _ in edges[o]))
            if not ready:
                break
            done.extend(ready)
            left -= set(ready)
        if not left:
            return done, deferred
        cycle = _cycle(left, edges, deferred)
        breakable = [(o, f) for o, f, req in cycle if not req]
        if not breakable:
            path = " -> ".join(f"{o}.{f}" for o, f, _ in cycle)
            raise RequiredCycle(f"a cycle of required references ({path}): no record of it could be "
                                "inserted first")
        deferred.add(breakable[0])


def _cycle(left: set[str], edges: dict[str, list[Edge]], deferred: set[tuple[str, str]]) -> list[Edge]:
    """One cycle among the objects left, as (object, field, required) steps."""
    node = sorted(left)[0]
    path: list[Edge] = []
    seen = {node: 0}
    while True:
        field, target, required = next((f, t, req) for f, t, req in edges[node]
                                       if t in left and t != node and (node, f) not in deferred)
        path.append((node, field, required))
        if target in seen:
            return path[seen[target]:]
        seen[target] = len(path)
        node = target
