"""Query results spooled to disk as Arrow IPC files.

A query locator (REST) or a Bulk 2.0 job may hold millions of rows for many minutes, and clients
page through them at their own pace. Keeping those rows in Python memory would make the emulator's
footprint grow with every open query, so results are streamed from DuckDB batch by batch into an
Arrow IPC file and read back through a memory map: pages are zero-copy slices of the file.
"""

from __future__ import annotations

import bisect
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

BATCH_ROWS = 50_000  # rows per IPC record batch: large enough to be cheap, small enough to stay flat


class Spool:
    """One materialised result: an Arrow IPC file on disk, opened memory-mapped for slicing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._source = pa.memory_map(str(path), "r")
        self._reader = pa.ipc.open_file(self._source)
        self.schema: pa.Schema = self._reader.schema
        starts = [0]
        for i in range(self._reader.num_record_batches):
            starts.append(starts[-1] + self._reader.get_batch(i).num_rows)
        self._starts = starts  # starts[i] = first row of batch i; starts[-1] = total rows

    @classmethod
    def write(cls, cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any], path: Path,
              batch_rows: int = BATCH_ROWS) -> Spool:
        """Run `sql` and stream its rows into `path`; memory stays at about one batch."""
        reader = cursor.execute(sql, params).to_arrow_reader(batch_rows)
        try:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
                for batch in reader:
                    if batch.num_rows:
                        writer.write_batch(batch)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return cls(path)

    @property
    def num_rows(self) -> int:
        return self._starts[-1]

    @property
    def nbytes(self) -> int:
        """Size of the file: a cheap estimate of how wide the rows are."""
        return self.path.stat().st_size

    def slice(self, offset: int, limit: int) -> pa.Table:
        """Rows [offset, offset+limit) as a table (zero-copy views of the mapped file)."""
        offset = max(offset, 0)
        end = min(offset + max(limit, 0), self.num_rows)
        if offset >= end:
            return self.schema.empty_table()
        first = bisect.bisect_right(self._starts, offset) - 1
        batches = []
        with self._lock:
            i = first
            while i < len(self._starts) - 1 and self._starts[i] < end:
                batches.append(self._reader.get_batch(i))
                i += 1
        table = pa.Table.from_batches(batches, self.schema)
        return table.slice(offset - self._starts[first], end - offset)

    def delete(self) -> None:
        """Close the map and remove the file."""
        with self._lock:
            self._source.close()
        self.path.unlink(missing_ok=True)
