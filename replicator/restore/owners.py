"""Ids that mean something else in another org: owners by username, record types by developer name,
dangling references emptied.

Why not through the persisted id map: a user is the same person in both orgs, not a copy made by a
load, and a reference emptied because the target lacks its record must not be remembered as a
mapping. These pairs live only for one load, layered over the id map (`Overlay`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from replicator.restore.selection import Snapshot
from replicator.salesforce.client import OrgClient
from replicator.sinks.salesforce.model import IdMap

USER_OBJECTS = frozenset({"User", "Group"})
RECORD_TYPE = "RecordType"


class Overlay:
    """The persisted id map with fixed pairs on top (a pair to None empties the reference)."""

    def __init__(self, base: IdMap, fixed: dict[str, str | None]) -> None:
        self.base, self.fixed = base, fixed

    def lookup(self, source_ids: Sequence[str]) -> dict[str, str]:
        """Mapped Ids; fixed pairs apply where the id map knows nothing."""
        found = self.base.lookup(source_ids)
        found.update({i: self.fixed[i] for i in source_ids if i in self.fixed and i not in found})  # type: ignore[misc]
        return found

    def add(self, sobject: str, pairs: pa.Table) -> None:
        """New pairs go to the persisted id map."""
        self.base.add(sobject, pairs)


def running_user(client: OrgClient) -> str:
    """The Id of the user the client is logged in as (OpenID Connect userinfo)."""
    return str(client.get_json("/services/oauth2/userinfo")["user_id"])


def owners(snapshot: Snapshot, client: OrgClient,
           user_ids: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
    """Source user Id -> target user Id by Username, then Email; unmatched ones -> the running user
    (listed in the returned notes)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}, []
    known = snapshot.rows("User", "Id", wanted).to_pylist() if "User" in snapshot.objects else []
    by_name: dict[str, str] = {}
    by_mail: dict[str, str] = {}
    for page in client.query_pages("SELECT Id, Username, Email FROM User WHERE IsActive = true"):
        for user in page:
            for index, key in ((by_name, user.get("Username")), (by_mail, user.get("Email"))):
                if key:
                    index.setdefault(key.lower(), user["Id"])
    mapped: dict[str, str | None] = {}
    for user in known:
        match = by_name.get((user.get("Username") or "").lower()) \
            or by_mail.get((user.get("Email") or "").lower())
        if match:
            mapped[user["Id"]] = match
    unmatched = [u for u in wanted if u not in mapped]
    notes = []
    if unmatched:
        me = running_user(client)
        mapped.update({u: me for u in unmatched})
        notes.append(f"{len(unmatched)} owner(s) without a user of the same username or email in the target "
                     f"fall back to the running user {me}: {', '.join(unmatched[:10])}")
    return mapped, notes


def record_types(snapshot: Snapshot, client: OrgClient,
                 type_ids: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
    """Source record type Id -> the target's of the same object and DeveloperName; unmatched ones are
    emptied (the target's default record type applies) and listed in the returned notes."""
    wanted = sorted(set(type_ids))
    if not wanted:
        return {}, []
    known = snapshot.rows(RECORD_TYPE, "Id", wanted).to_pylist() if RECORD_TYPE in snapshot.objects else []
    target = {(r.get("SobjectType"), r.get("DeveloperName")): r["Id"] for page in client.query_pages(
        "SELECT Id, SobjectType, DeveloperName FROM RecordType") for r in page}
    mapped: dict[str, str | None] = {r["Id"]: target.get((r.get("SobjectType"), r.get("DeveloperName")))
                                     for r in known}
    unmatched = [t for t in wanted if not mapped.get(t)]
    mapped.update(dict.fromkeys(unmatched))
    if not unmatched:
        return mapped, []
    return mapped, [f"{len(unmatched)} record type(s) without one of the same developer name in the target "
                    f"are left empty (the default record type applies): {', '.join(unmatched[:10])}"]


def other_org(snapshot: Snapshot, client: OrgClient,
              values: dict[str, set[str]]) -> tuple[dict[str, str | None], list[str]]:
    """The pairs a load into another org needs, from the values of reference fields grouped by what
    they reference ("User" for owners and other user lookups, "RecordType")."""
    users, user_notes = owners(snapshot, client, values.get("User", set()))
    types, type_notes = record_types(snapshot, client, values.get(RECORD_TYPE, set()))
    return {**users, **types}, user_notes + type_notes


def kind_of(targets: Sequence[str]) -> str | None:
    """Which `other_org` group a reference field's values belong to, if any."""
    if set(targets) & USER_OBJECTS:
        return "User"
    return RECORD_TYPE if RECORD_TYPE in targets else None
