"""Streams of Arrow batches cut into the record counts one API call carries.

Why exact cuts across batch boundaries: the plan's price counts ceil(records / 200) calls per
object, and the loader must spend exactly that, whatever sizes the store's batches come in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa


def chunks(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly `size` rows (the last one shorter), holding at most one chunk's rows."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(size - held, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            held += take
            offset += take
            if held == size:
                yield _joined(pending)
                pending, held = [], 0
    if held:
        yield _joined(pending)


def _joined(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
