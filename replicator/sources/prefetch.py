"""Run a page producer one step ahead of its consumer, in a worker thread.

Why: a Bulk query is three stages that each wait on something else: the org renders the next CSV
page, we parse the current one (pyarrow releases the GIL), and dlt writes the previous table to
parquet. Fetched in line, those waits add up; with the fetch and parse of page k+1 running while
page k is written they overlap, and memory stays bounded by `depth` pages in the queue plus the one
in each hand.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_POLL_SECONDS = 0.1  # how often a blocked worker checks whether the consumer went away


def prefetched(produce: Callable[[], Iterator[T]], *, depth: int = 1, name: str = "prefetch") -> Iterator[T]:
    """The items of `produce()`, made in a worker thread at most `depth` items ahead of the consumer.

    The worker runs in a copy of the caller's context (so OrgClient.scoped metering follows it). An
    exception in the producer is raised to the consumer at the item where it happened. When the
    consumer stops early (error, close), the worker is told to stop, its producer is closed (a Bulk
    job's `finally` deletes the job) and joined before this generator returns.
    """
    items: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        source: Iterator[T] | None = None
        try:
            source = produce()
            for item in source:
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as exc:  # handed to the consumer, raised there
            put("error", exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "done":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
