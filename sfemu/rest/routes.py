"""Every route of the REST API (`/services/data`), in the order the dispatcher tries them.

Reads: discovery (versions, resources, describes), query, records, limits. Writes: write (single
records) and composite (collections, composite, graph, tree, batch).
"""

from __future__ import annotations

from sfemu.rest import composite, discovery, limits, query, records, search, write
from sfemu.routing import Route

ROUTES: list[Route] = [
    *discovery.ROUTES,
    *query.ROUTES,
    *records.ROUTES,
    *limits.ROUTES,
    *write.ROUTES,
    *composite.ROUTES,
    *search.ROUTES,
]
