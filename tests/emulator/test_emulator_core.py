"""Core emulator parts: ids, clock, store, limits, sessions, fault settings, path handling."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sfemu import ids
from sfemu.app import session_token
from sfemu.clock import Clock
from sfemu.faults import FaultConfig, Faults
from sfemu.limits import ApiLimits
from sfemu.routing import normalise_path
from sfemu.schema import Schema
from sfemu.sessions import Sessions
from sfemu.store import Store


def test_checksum_matches_known_salesforce_ids() -> None:
    # Real ids from Salesforce documentation and recorded responses (15 -> 18 characters).
    assert ids.to18("0015500001QdQWa") == "0015500001QdQWaAAN"
    assert ids.to18("003q000000KvQ1t") == "003q000000KvQ1tAAF"
    assert ids.to18("750R0000000zlh9") == "750R0000000zlh9IAA"


def test_normalize_accepts_both_forms_and_recovers_case() -> None:
    full = ids.make_id("003", 987654)
    assert ids.normalize(full) == full
    assert ids.normalize(full[:15]) == full
    mangled = full[:15].lower() + full[15:].lower()  # 18-char ids are case-insensitive
    assert ids.normalize(mangled) == full
    assert ids.normalize("not-an-id") is None
    assert ids.normalize("0015500001QdQWa!!!") is None


def test_minted_ids_sort_in_creation_order_and_round_trip() -> None:
    minted = [ids.make_id("001", n) for n in (1, 61, 62, 3843, 3844, 10**9)]
    assert minted == sorted(minted)
    assert [ids.counter_of(i) for i in minted] == [1, 61, 62, 3843, 3844, 10**9]
    assert all(ids.is_valid(i) and len(i) == 18 for i in minted)


def test_clock_set_advance_and_strictly_increasing_stamps() -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    assert abs(clock.now() - datetime(2026, 1, 1, tzinfo=UTC)) < timedelta(seconds=2)
    later = clock.advance(86400)
    assert later - datetime(2026, 1, 2, tzinfo=UTC) < timedelta(seconds=2)
    stamps = [clock.stamp() for _ in range(50)]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert all(s.microsecond % 1000 == 0 for s in stamps)


def test_store_creates_typed_tables_and_counts_recycle_bin() -> None:
    schema = Schema.load()
    store = Store(schema, Clock())
    account = schema.get("account")
    new = store.new_ids(account, 3)
    store.append(account, [pa.table({"Id": new, "Name": ["A", "B", "C"], "IsDeleted": [False, False, True],
                                     "_DeletedAt": [None, None, datetime(2026, 1, 1)]})])
    assert store.count(account) == 2
    assert store.count(account, include_deleted=True) == 3
    types = dict(store.cursor().execute("SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = 'Account'").fetchall())
    assert types["CreatedDate"] == "TIMESTAMP"
    assert types["IsDeleted"] == "BOOLEAN"
    assert "BillingAddress" not in types and "BillingCity" in types  # compounds are not stored
    assert store.new_ids(account, 1)[0] > new[-1]


def test_store_purges_recycle_bin_after_15_days() -> None:
    schema = Schema.load()
    clock = Clock(datetime(2026, 3, 20, tzinfo=UTC))
    store = Store(schema, clock)
    account = schema.get("Account")
    rows = store.new_ids(account, 2)
    store.append(account, [pa.table({"Id": rows, "Name": ["old", "recent"], "IsDeleted": [True, True],
                                     "_DeletedAt": [datetime(2026, 3, 1), datetime(2026, 3, 15)]})])
    assert store.purge_recycle_bin() == 1
    assert store.count(account, include_deleted=True) == 1


def test_limits_window_rolls_with_the_emulator_clock() -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    limits = ApiLimits(clock, daily_max=3)
    for _ in range(3):
        limits.record("GET", "/services/data/v59.0/limits", 200, True, "u", "rest")
    limits.record("POST", "/services/oauth2/token", 200, False, None, "auth")
    assert limits.exhausted() and limits.header() == "api-usage=3/3"
    assert len(limits.ledger()) == 4 and limits.ledger(3)[0].kind == "auth"
    clock.advance(24 * 3600 + 1)
    assert limits.used() == 0 and not limits.exhausted()


def test_sessions_expire_when_idle_or_after_n_calls() -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    sessions = Sessions(clock, ids.make_id("00D", 1), timeout_seconds=60)
    s = sessions.issue("005", "u@example.com")
    assert s.token.startswith(ids.make_id("00D", 1)[:15] + "!")
    assert sessions.touch(s.token) is not None
    clock.advance(61)
    assert sessions.touch(s.token) is None
    sessions.expire_after_calls = 2
    s2 = sessions.issue("005", "u@example.com")
    assert sessions.touch(s2.token) and sessions.touch(s2.token)
    assert sessions.touch(s2.token) is None


def test_fault_config_rejects_bad_input_with_a_message() -> None:
    with pytest.raises(ValueError, match="unknown fault setting"):
        FaultConfig.from_json({"eror_rate": 1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig.from_json({"error_rate": 2})
    faults = Faults(FaultConfig.from_json({"error_rate": 1.0, "error_status": 500}))
    assert faults.server_error() == 500
    assert Faults().server_error() is None


def test_paths_and_tokens_are_read_leniently() -> None:
    assert normalise_path("//services/data/v59.0//query/") == "/services/data/v59.0/query"
    assert normalise_path("/") == "/"
    assert session_token({"authorization": "Bearer abc"}) == "abc"
    assert session_token({"authorization": "OAuth xyz"}) == "xyz"
    assert session_token({"x-sfdc-session": "s1"}) == "s1"
    assert session_token({}) is None
