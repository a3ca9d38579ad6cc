"""The "nothing changed" probe: packing into /composite calls, the questions it asks, and, against the
emulator, that it proves quiet objects unchanged and still finds every single change.

The integration test plans the demo org, takes a baseline probe, then makes one change at a time
(an update, a deletion, a FeedComment (read whole every run), a ContentDocumentLink counted through
its parent, a record in a planned-empty object) and checks what the next probe reports. The
emulator's clock moves two minutes after each change, so the next baseline window starts after it
(windows start at whole minutes).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from replicator.backup.probe import Probe, count_query, dormant_plans, next_watermarks, probe
from replicator.config import ObjectSelection, load_config
from replicator.salesforce.catalog import ObjectPlan, plan_org
from replicator.salesforce.client import OrgClient, OrgError
from replicator.salesforce.composite import Batcher, pack

PASSWORD_ENV = "REPLICATOR_PROBE_PASSWORD"
SECRET_ENV = "REPLICATOR_PROBE_SECRET"


# --- packing and query text ---------------------------------------------------------------------


@pytest.mark.parametrize("queries, others", [(0, 0), (1, 0), (0, 1), (5, 20), (6, 19), (10, 40), (11, 5),
                                             (0, 107), (3, 103), (25, 0)])
def test_pack_keeps_both_composite_limits_in_the_fewest_calls(queries: int, others: int) -> None:
    kinds = [True] * queries + [False] * others
    random.Random(queries * 1000 + others).shuffle(kinds)
    packs = pack(kinds)
    assert sorted(i for chunk in packs for i in chunk) == list(range(len(kinds)))
    assert all(len(chunk) <= 25 and sum(kinds[i] for i in chunk) <= 5 for chunk in packs)
    assert len(packs) == max(math.ceil(len(kinds) / 25), math.ceil(queries / 5))
    assert all(chunk == sorted(chunk) for chunk in packs)  # composites run in order


def test_count_query_asks_what_the_extract_would_read() -> None:
    since = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    feed = ObjectPlan("FeedComment", True, cursor="CreatedDate")
    assert unquote_plus(count_query(feed, since)) == (
        "queryAll/?q=SELECT COUNT() FROM FeedComment WHERE CreatedDate >= 2024-05-01T12:30:00.000Z")
    link = ObjectPlan("ContentDocumentLink", True, cursor="SystemModstamp",
                      filter_by=("ContentDocumentId", "ContentDocument"))
    assert unquote_plus(count_query(link, since)) == (
        "queryAll/?q=SELECT COUNT() FROM ContentDocumentLink WHERE ContentDocumentId IN "
        "(SELECT Id FROM ContentDocument) AND SystemModstamp >= 2024-05-01T12:30:00.000Z")
    assert unquote_plus(count_query(ObjectPlan("Lead", False, cursor="SystemModstamp"), None)) == (
        "query/?q=SELECT COUNT() FROM Lead")
    with pytest.raises(ValueError):
        count_query(ObjectPlan("Account WHERE Id != null", True, cursor="SystemModstamp"), since)


# --- against the emulator -------------------------------------------------------------------------


@pytest.fixture
def client(emulator: Any, tmp_config: Callable[..., Path],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[OrgClient]:
    monkeypatch.setenv(PASSWORD_ENV, emulator.password)
    monkeypatch.setenv(SECRET_ENV, emulator.client_secret)
    path = tmp_config(f"""
    [storage]
    path = "store"

    [orgs.emu]
    login_url = "{emulator.base_url}"
    auth = "password"
    username = "{emulator.username}"
    password_env = "{PASSWORD_ENV}"
    client_id = "{emulator.client_id}"
    client_secret_env = "{SECRET_ENV}"
    ca_bundle = "{emulator.ca_path}"

    [jobs.daily]
    org = "emu"
    """)
    yield OrgClient(load_config(path).orgs["emu"])
    emulator.control("POST", "reset", {})


def counted_since(emulator: Any, seq: int) -> int:
    return emulator.control("GET", f"ledger?since={seq}")["summary"]["counted"]


def last_seq(emulator: Any) -> int:
    return emulator.control("GET", "ledger")["last_seq"]


def test_composite_refuses_a_sixth_query_and_the_batcher_never_sends_one(emulator: Any,
                                                                         client: OrgClient) -> None:
    base = f"/services/data/v{client.settings.api_version}/"
    six = [{"method": "GET", "url": base + "query/?q=SELECT+COUNT()+FROM+Account", "referenceId": f"q{i}"}
           for i in range(6)]
    with pytest.raises(OrgError) as refused:
        client.request("POST", "composite", json_body={"compositeRequest": six})
    assert refused.value.code == "LIMIT_EXCEEDED"
    seq = last_seq(emulator)
    answers = Batcher(client).get_many([("query/?q=SELECT+COUNT()+FROM+Account", {})] * 12
                                       + [("sobjects/Account/describe", {})] * 3)
    assert [status for status, _, _ in answers] == [200] * 15
    assert len({body["totalSize"] for _, body, _ in answers[:12]}) == 1
    assert answers[12][1]["name"] == "Account"
    assert counted_since(emulator, seq) == 3  # 12 queries need 3 composites, the describes ride along


@dataclass
class State:
    """A job's remembered probe state, as backup.JobState keeps it between runs."""

    last_modified: str | None = None
    plans: list[Any] = field(default_factory=list)
    watermarks: dict[str, str] = field(default_factory=dict)

    def learn(self, found: Probe) -> None:
        """What a run that backed up every object successfully remembers."""
        self.last_modified = found.last_modified
        self.plans = ["cached"]
        self.watermarks.update(found.covered)


def test_probe_proves_quiet_objects_unchanged_and_finds_every_single_change(emulator: Any,
                                                                             client: OrgClient) -> None:
    plans = plan_org(client, ObjectSelection(recommended=True))
    selected = [p for p in plans if p.included]
    names = {p.name for p in selected}
    assert {"Account", "FeedComment", "ContentDocumentLink", "ContentDocument"} <= names
    whole = {p.name for p in selected if p.cursor is None}  # read whole every run: nothing to ask
    assert whole == {"FeedComment"}
    batcher, state, sf = Batcher(client), State(), emulator.sf()

    def advance() -> None:
        emulator.control("POST", "clock", {"advance_seconds": 120})

    def run() -> Probe:
        return probe(batcher, state, plans, selected, False)

    clock = datetime.fromisoformat(emulator.control("GET", "clock")["now"])
    first = probe(batcher, state, plans, selected, False, start=clock)
    assert first.changed == names and not first.unchanged  # no watermarks yet: extract everything
    assert first.org_now is not None and set(first.covered) >= names
    state.learn(first)
    advance()

    seq = last_seq(emulator)
    quiet = run()
    assert quiet.plan_valid and quiet.changed == whole and quiet.unchanged == names - whole
    subrequests = 1 + sum(1 if p.filter_by else 2 for p in selected if p.cursor) + len(dormant_plans(plans))
    assert counted_since(emulator, seq) == math.ceil(subrequests / 25)  # one API call per 25 subrequests
    state.learn(quiet)

    account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    sf.Account.update(account, {"Description": "probe test"})
    advance()
    found = run()
    assert "Account" in found.changed and "Opportunity" not in found.changed, found.changed
    state.learn(found)

    opportunity = sf.query("SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")["records"][0]["Id"]
    sf.Opportunity.delete(opportunity)
    advance()
    found = run()
    assert "Opportunity" in found.changed and "Account" not in found.changed, found.changed
    state.learn(found)

    item = sf.query("SELECT Id FROM FeedItem LIMIT 1")["records"][0]["Id"]
    sf.FeedComment.create({"FeedItemId": item, "CommentBody": "probe test"})
    advance()
    found = run()
    assert found.changed == {"FeedComment"} | whole
    state.learn(found)

    document = sf.query("SELECT Id FROM ContentDocument LIMIT 1")["records"][0]["Id"]
    links = sf.query(f"SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'")
    taken = {r["LinkedEntityId"] for r in links["records"]}
    accounts = sf.query("SELECT Id FROM Account LIMIT 50")["records"]
    other = next(r["Id"] for r in accounts if r["Id"] not in taken)
    sf.ContentDocumentLink.create({"ContentDocumentId": document, "LinkedEntityId": other, "ShareType": "V"})
    advance()
    found = run()
    assert found.changed == {"ContentDocumentLink"} | whole
    state.learn(found)

    sf.ContentDocument.update(document, {"Title": "probe test"})  # links are re-read with their document
    advance()
    found = run()
    assert found.changed == {"ContentDocument", "ContentDocumentLink"} | whole, found.changed
    state.learn(found)

    sf.ContentDocument.delete(document)  # its links go with it, where the semi-join cannot see them
    advance()
    found = run()
    assert found.changed == {"ContentDocument", "ContentDocumentLink"} | whole, found.changed
    state.learn(found)

    advance()
    found = run()
    assert found.changed == whole and found.plan_valid


def test_a_planned_empty_object_that_gets_records_invalidates_the_cached_plan(emulator: Any,
                                                                               client: OrgClient) -> None:
    plans = plan_org(client, ObjectSelection(include=("Account", "Lead"), recommended=False))
    # the cached plan left Lead out for having no records (the org has some: the first COUNT() sees them)
    plans = [replace(p, included=False, reason="no records", records=0) if p.name == "Lead" else p
             for p in plans]
    selected = [p for p in plans if p.included]
    assert [p.name for p in dormant_plans(plans)] == ["Lead"]
    batcher, state = Batcher(client), State()
    clock = datetime.fromisoformat(emulator.control("GET", "clock")["now"])
    first = probe(batcher, state, plans, selected, False, start=clock)
    assert not first.plan_valid and "Lead" not in first.dormant
    state.learn(first)
    state.watermarks["Lead"] = state.watermarks["Account"]  # as if it had been proven empty then
    emulator.control("POST", "clock", {"advance_seconds": 120})

    quiet = probe(batcher, state, plans, selected, False)
    assert quiet.plan_valid and quiet.dormant == {"Lead"} and quiet.unchanged == {"Account"}
    assert set(next_watermarks(state.watermarks, quiet, ok={"Account"})) == {"Account", "Lead"}
    state.learn(quiet)

    emulator.sf().Lead.create({"LastName": "Probe", "Company": "Probe test"})
    emulator.control("POST", "clock", {"advance_seconds": 120})
    awake = probe(batcher, state, plans, selected, False)
    assert not awake.plan_valid and awake.unchanged == {"Account"}
