"""The query engine shared by REST /query and Bulk API 2.0 query jobs.

A SOQL query is compiled to DuckDB SQL, run once, and its rows spooled to an Arrow file; the
REST API then serves 2,000-row pages behind a query locator and Bulk 2.0 serves CSV pages, both as
slices of the same spool. Locators idle for 15 minutes (emulator clock) expire, as on Salesforce.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sfemu.errors import SalesforceError
from sfemu.ids import make_id
from sfemu.render import JsonRenderer, csv_bytes
from sfemu.results import Spool
from sfemu.soql import CompiledQuery, SoqlError, compile_query
from sfemu.soql.compiler import ExtraWhere

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

LOCATOR_PREFIX = "01g"
IDLE_EXPIRY = timedelta(minutes=15)
SPOOL_GLOB = "q-*.arrow"


def query_timeout() -> SalesforceError:
    return SalesforceError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")


def invalid_locator() -> SalesforceError:
    return SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


class ResultSet:
    """The rows of one executed query, addressable by offset until dropped or expired."""

    def __init__(self, engine: QueryEngine, result_id: str, compiled: CompiledQuery,
                 spool: Spool | None, total_size: int) -> None:
        self.engine = engine
        self.id = result_id
        self.compiled = compiled
        self.spool = spool  # None for COUNT() queries: no records at all
        self.total_size = total_size
        self.last_used: datetime = engine.org.clock.now()

    @property
    def num_rows(self) -> int:
        """Rows available as records (0 for COUNT(), whose total_size is the count)."""
        return self.spool.num_rows if self.spool else 0

    @property
    def nbytes(self) -> int:
        return self.spool.nbytes if self.spool else 0

    def touch(self) -> None:
        self.last_used = self.engine.org.clock.now()

    def json_records(self, offset: int, limit: int, api_version: str) -> list[dict[str, Any]]:
        """REST records for rows [offset, offset+limit), child subqueries included."""
        self.touch()
        if self.spool is None:
            return []
        renderer = JsonRenderer(self.compiled, self.engine.org.schema, api_version)
        return renderer.records(self.spool.slice(offset, limit), self.engine.org.store.cursor())

    def csv_page(self, offset: int, limit: int, delimiter: str = ",", line_ending: str = "\n") -> bytes:
        """A Bulk 2.0 CSV page for rows [offset, offset+limit), header row included."""
        self.touch()
        if self.spool is None:
            return b""
        return csv_bytes(self.spool.slice(offset, limit), self.compiled.columns, delimiter, line_ending)

    def delete(self) -> None:
        if self.spool is not None:
            self.spool.delete()


class QueryEngine:
    """Compiles, runs and keeps query results for one org."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._results: dict[str, ResultSet] = {}  # REST locators, subject to idle expiry
        self._counter = itertools.count(1)
        for stale in org.spool_dir.glob(SPOOL_GLOB):  # spools of a previous run are unreachable
            stale.unlink(missing_ok=True)

    def compile(self, soql: str, *, include_deleted: bool, bulk: bool = False,
                extra_where: ExtraWhere | None = None) -> CompiledQuery:
        """SOQL -> SQL; SOQL errors become Salesforce's 400 with the same errorCode and message."""
        try:
            return compile_query(soql, self.org.schema, include_deleted=include_deleted, bulk=bulk,
                                 now=self.org.clock.now(), extra_where=extra_where)
        except SoqlError as exc:
            raise SalesforceError(400, exc.error_code, exc.message) from exc

    def execute(self, compiled: CompiledQuery, *, expires: bool = True) -> ResultSet:
        """Run a compiled query into a spool. `expires=False` results are owned by the caller
        (Bulk jobs keep theirs for days) and are not subject to the 15-minute locator expiry."""
        if self.org.faults.query_times_out(compiled.sobject.name):
            raise query_timeout()
        self.expire()
        result_id = make_id(LOCATOR_PREFIX, next(self._counter))
        cursor = self.org.store.cursor()
        if compiled.count_only:
            count = cursor.execute(compiled.sql, compiled.params).fetchone()[0]
            result = ResultSet(self, result_id, compiled, None, int(count))
        else:
            spool = Spool.write(cursor, compiled.sql, compiled.params,
                                self.org.spool_dir / f"q-{result_id}.arrow")
            result = ResultSet(self, result_id, compiled, spool, spool.num_rows)
        if expires:
            with self._lock:
                self._results[result_id] = result
        return result

    def run(self, soql: str, *, include_deleted: bool, bulk: bool = False) -> ResultSet:
        return self.execute(self.compile(soql, include_deleted=include_deleted, bulk=bulk))

    def get(self, result_id: str) -> ResultSet | None:
        """A live result by id (touching it), or None when unknown, dropped or expired."""
        self.expire()
        with self._lock:
            result = self._results.get(result_id)
        if result is not None:
            result.touch()
        return result

    def require(self, result_id: str) -> ResultSet:
        """Like get(), but an unknown or expired locator is Salesforce's INVALID_QUERY_LOCATOR."""
        result = self.get(result_id)
        if result is None:
            raise invalid_locator()
        return result

    def drop(self, result_id: str) -> None:
        with self._lock:
            result = self._results.pop(result_id, None)
        if result is not None:
            result.delete()

    def expire(self) -> None:
        """Drop locators idle for more than 15 minutes of emulator time."""
        cutoff = self.org.clock.now() - IDLE_EXPIRY
        with self._lock:
            stale = [r for r in self._results.values() if r.last_used < cutoff]
            for r in stale:
                del self._results[r.id]
        for r in stale:
            r.delete()


_CREATE_LOCK = threading.Lock()


def query_engine(org: EmulatedOrg) -> QueryEngine:
    """The org's engine, created on first use (once: creating one clears the spool folder)."""
    with _CREATE_LOCK:
        engine = org.extensions.get("query")
        if engine is None:
            engine = org.extensions["query"] = QueryEngine(org)
    return engine
