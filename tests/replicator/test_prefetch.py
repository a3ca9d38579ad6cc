"""prefetched(): order, errors raised at the consumer, producer closed when the consumer stops early."""

from __future__ import annotations

import threading

import pytest

from replicator.sources.prefetch import prefetched


def test_items_in_order_and_at_most_depth_ahead() -> None:
    made: list[int] = []

    def produce():
        for i in range(5):
            made.append(i)
            yield i

    got = []
    for item in prefetched(produce, depth=1):
        got.append(item)
        assert len(made) <= item + 3  # the item in hand, one queued, one being made
    assert got == [0, 1, 2, 3, 4]


def test_producer_error_is_raised_after_the_items_before_it() -> None:
    def produce():
        yield 1
        raise ValueError("page 2 failed")

    items = prefetched(produce)
    assert next(items) == 1
    with pytest.raises(ValueError, match="page 2 failed"):
        next(items)


def test_consumer_stopping_early_closes_the_producer_and_joins_the_worker() -> None:
    closed = threading.Event()

    def produce():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    items = prefetched(produce, name="test-prefetch")
    assert next(items) == 0
    items.close()
    assert closed.is_set()
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())
