"""Vectorised id minting (ids.make_ids) against the one-by-one reference (ids.make_id)."""

from __future__ import annotations

import pyarrow as pa

from sfemu import ids


def test_make_ids_equals_make_id_across_base62_carries() -> None:
    # each range crosses a carry into the next base-62 digit (62, 62**2, 62**5, 62**9)
    for first, n in ((0, 130), (3_800, 100), (62**5 - 40, 80), (62**9 - 3, 6), (62**10 - 5, 5)):
        got = ids.make_ids("001", first, n)
        assert got.type == pa.string()
        assert got.to_pylist() == [ids.make_id("001", c) for c in range(first, first + n)]


def test_make_ids_keeps_the_key_prefix_case_in_the_checksum() -> None:
    counters = (3843, 3844, 3845)
    got = ids.make_ids("a0B", 3843, 3).to_pylist()
    assert got == [ids.make_id("a0B", c) for c in counters]
    assert all(ids.is_valid(i) and ids.counter_of(i) == c for i, c in zip(got, counters, strict=True))
    assert ids.make_ids("001", 1, 0).to_pylist() == []
