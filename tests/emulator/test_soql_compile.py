"""Compiled SOQL executed against a small real store: rows, relationships, filters and deletions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from sfemu.clock import Clock
from sfemu.ids import to18
from sfemu.schema import Schema
from sfemu.soql import CompiledQuery, compile_query
from sfemu.store import Store

NOW = datetime(2024, 5, 15, 19, 0, tzinfo=UTC)  # 12:00 in Los Angeles


class Org:
    """A handful of records with known ids, created once per module."""

    def __init__(self) -> None:
        self.schema = Schema.load()
        self.store = Store(self.schema, Clock(NOW))
        self.ids: dict[str, str] = {}

    def add(self, obj_name: str, rows: list[dict]) -> list[str]:
        obj = self.schema.get(obj_name)
        ids = self.store.new_ids(obj, len(rows))
        full = []
        for rid, row in zip(ids, rows, strict=True):
            extra = {"IsDeleted": row.get("_DeletedAt") is not None} if obj.field("IsDeleted") else {}
            full.append({"Id": rid, **extra, **row})
        keys = list(dict.fromkeys(k for row in full for k in row))
        cols = {k: [row.get(k) for row in full] for k in keys}
        self.store.append(obj, [pa.table(cols)])
        return ids


@pytest.fixture(scope="module")
def org() -> Org:
    o = Org()
    deleted = datetime(2024, 5, 14, 8, 0)
    u1, u2 = o.add("User", [
        {"Username": "ada@x", "LastName": "Lovelace", "Name": "Ada Lovelace", "Email": "a@x"},
        {"Username": "bob@x", "LastName": "Builder", "Name": "Bob Builder", "Email": "b@x"},
    ])
    acme, beta, sale, gone, nulls = o.add("Account", [
        {"Name": "Acme", "OwnerId": u1, "Type": "Customer - Direct", "BillingCity": "Paris",
         "BillingCountry": "France", "BillingStreet": "2 Place Jussieu", "AnnualRevenue": 100,
         "Regions__c": "EMEA;APAC", "SystemModstamp": datetime(2024, 5, 15, 10, 0, 0, 500000),
         "CreatedDate": datetime(2024, 5, 15, 8, 0), "Customer_Since__c": date(2020, 1, 1)},
        {"Name": "beta corp", "OwnerId": u2, "Type": "Prospect", "AnnualRevenue": 50, "Regions__c": "AMER",
         "SystemModstamp": datetime(2017, 1, 1, 0, 0), "CreatedDate": datetime(2024, 5, 14, 5, 0),
         "Customer_Since__c": date(2024, 5, 1)},
        {"Name": "50% off_sale", "OwnerId": u1, "Type": "Prospect", "AnnualRevenue": 75,
         "Regions__c": "APAC;AMER;EMEA", "SystemModstamp": datetime(2016, 12, 31, 23, 59, 59),
         "CreatedDate": datetime(2023, 1, 1, 12, 0)},
        {"Name": "Gone", "OwnerId": u1, "_DeletedAt": deleted, "SystemModstamp": deleted,
         "CreatedDate": datetime(2023, 6, 1)},
        {"Name": "Nulls", "OwnerId": u2, "CreatedDate": datetime(2022, 6, 1)},
    ])
    o.store.cursor().execute('UPDATE "Account" SET "ParentId" = ? WHERE "Id" = ?', [acme, beta])
    doe, roe, poe, dead = o.add("Contact", [
        {"AccountId": acme, "LastName": "Doe", "FirstName": "Jane", "Name": "Jane Doe", "Email": "jd@x"},
        {"AccountId": acme, "LastName": "Roe", "Name": "Roe"},
        {"AccountId": beta, "LastName": "Poe", "Name": "Poe", "Email": "p@x"},
        {"AccountId": acme, "LastName": "Dead", "Name": "Dead", "_DeletedAt": deleted},
    ])
    (lead,) = o.add("Lead", [{"LastName": "Lead", "Name": "Lee Lead", "Company": "Leadco"}])
    (opp,) = o.add("Opportunity", [{"Name": "Big deal", "AccountId": acme, "Amount": 1000, "Probability": 50,
                                    "StageName": "Prospecting", "CloseDate": date(2024, 6, 1)}])
    t1, t2, t3 = o.add("Task", [
        {"Subject": "Call", "WhatId": acme, "WhoId": doe},
        {"Subject": "Email", "WhatId": opp, "WhoId": lead},
        {"Subject": "Orphan", "WhatId": gone},
    ])
    o.ids.update(u1=u1, u2=u2, acme=acme, beta=beta, sale=sale, gone=gone, nulls=nulls, doe=doe, roe=roe,
                 poe=poe, dead=dead, lead=lead, opp=opp, t1=t1, t2=t2, t3=t3)
    return o


def compile_(org: Org, text: str, **kw) -> CompiledQuery:
    return compile_query(text, org.schema, now=NOW, **kw)


def rows(org: Org, text: str, **kw) -> list[dict]:
    """Execute and key each row by Column.header (ref/id columns by their name)."""
    c = compile_(org, text, **kw)
    out = org.store.cursor().execute(c.sql, c.params).fetchall()
    assert all(len(r) == len(c.columns) for r in out)
    keys = [col.header if col.kind not in ("ref", "id") else f"{col.kind}:{col.header}" for col in c.columns]
    return [dict(zip(keys, r, strict=True)) for r in out]


def names(org: Org, where: str, obj: str = "Account", **kw) -> list[str]:
    return sorted(r["Name"] for r in rows(org, f"SELECT Name FROM {obj} WHERE {where}", **kw))


# --- shapes of sf_api.md 3.1 -------------------------------------------------------------------


def test_tap_incremental_shape(org: Org) -> None:
    got = rows(org, "SELECT Id,Name,SystemModstamp FROM Account "
                    "WHERE SystemModstamp >= 2017-01-01T00:00:00Z  "
                    "ORDER BY SystemModstamp ASC")
    assert [r["Name"] for r in got] == ["beta corp", "Acme"]


def test_tap_windowed_and_airbyte_shapes(org: Org) -> None:
    window = "SystemModstamp >= 2017-01-01T00:00:00Z  AND SystemModstamp < 2024-01-01T00:00:00Z"
    assert names(org, window) == ["beta corp"]
    assert names(org, "SystemModstamp >= 2023-01-01T00:00:00.000+00:00 AND SystemModstamp < "
                      "2024-05-16T00:00:00.000+00:00") == ["Acme"]
    got = rows(org, "SELECT Id,Name FROM Account ORDER BY Id ASC")
    assert [r["Id"] for r in got] == sorted(r["Id"] for r in got)
    assert len(got) == 4


def test_dlt_shapes(org: Org) -> None:
    got = rows(org, "SELECT Id, Name FROM Account WHERE SystemModstamp > 2024-05-15T10:00:00.000000Z "
                    "ORDER BY SystemModstamp ASC")
    assert [r["Name"] for r in got] == ["Acme"]  # 10:00:00.5 is after 10:00:00.000000
    assert len(rows(org, "SELECT Id, Name FROM User  ")) == 2
    assert len(rows(org, "SELECT Id, Name FROM Account  ORDER BY SystemModstamp ASC LIMIT 100")) == 4


def test_cumulusci_shapes(org: Org) -> None:
    assert rows(org, "select count() from Account") == [{"count": 4}]
    acme, beta = org.ids["acme"], org.ids["beta"]
    got = rows(org, f"SELECT Id, AccountId FROM Contact WHERE AccountId IN ('{acme}','{beta}')")
    assert len(got) == 3
    got = rows(org, "SELECT Id, TYPEOF Who WHEN Contact THEN LastName, Email WHEN Lead THEN LastName, "
                    "Company "
                    "ELSE Id END, TYPEOF What WHEN Account THEN Name ELSE Id END, Subject FROM Task")
    by_subject = {r["Subject"]: r for r in got}
    assert by_subject["Call"]["Who.LastName"] == "Doe" and by_subject["Call"]["Who.Email"] == "jd@x"
    assert by_subject["Call"]["What.Name"] == "Acme"
    assert by_subject["Email"]["Who.Company"] == "Leadco" and by_subject["Email"]["What.Id"] == org.ids["opp"]
    assert by_subject["Orphan"]["ref:What"] is None
    assert len(rows(org, "SELECT Id FROM Account ORDER BY CreatedDate DESC LIMIT 1000 FOR VIEW")) == 4
    assert len(rows(org, "SELECT Id FROM Account LIMIT 2")) == 2


def test_typeof_columns_carry_their_types(org: Org) -> None:
    c = compile_(org, "SELECT TYPEOF What WHEN Account THEN Name, Type WHEN Opportunity THEN Name, Amount "
                      "END FROM Task")
    typed = {col.header: col.types for col in c.columns if col.kind == "field"}
    assert typed == {"What.Name": ("Account", "Opportunity"), "What.Type": ("Account",),
                     "What.Amount": ("Opportunity",)}


# --- relationships ---------------------------------------------------------------------------


def test_parent_paths_and_refs(org: Org) -> None:
    c = compile_(org, "SELECT Name, Account.Name, Account.Owner.Name, Account.Parent.Name FROM Contact "
                      "ORDER BY LastName")
    assert [(col.kind, col.path) for col in c.columns] == [
        ("field", ("Name",)), ("ref", ("Account",)), ("field", ("Account", "Name")),
        ("ref", ("Account", "Owner")),
        ("field", ("Account", "Owner", "Name")), ("ref", ("Account", "Parent")),
        ("field", ("Account", "Parent", "Name")), ("id", ())]
    got = rows(org, "SELECT Name, account.NAME, Account.Owner.Name, Account.Parent.Name FROM Contact "
                    "ORDER BY LastName")
    keys = ("Name", "Account.Name", "Account.Owner.Name", "Account.Parent.Name")
    assert [tuple(r[k] for k in keys) for r in got] == [
        ("Jane Doe", "Acme", "Ada Lovelace", None), ("Poe", "beta corp", "Bob Builder", "Acme"),
        ("Roe", "Acme", "Ada Lovelace", None)]


def test_object_alias_and_name_prefix(org: Org) -> None:
    got = rows(org, "SELECT c.LastName, c.Account.Name FROM Contact c WHERE c.Account.Name = 'ACME' "
                    "ORDER BY c.LastName")
    assert [r["LastName"] for r in got] == ["Doe", "Roe"]
    got = rows(org, "SELECT Contact.LastName FROM Contact WHERE LastName = 'poe'")
    assert [r["LastName"] for r in got] == ["Poe"]


def test_polymorphic_name_and_type(org: Org) -> None:
    got = rows(org, "SELECT Subject, What.Name, What.Type, Who.Name, Who.Type FROM Task ORDER BY Subject")
    assert [(r["Subject"], r["What.Name"], r["What.Type"], r["Who.Name"], r["Who.Type"]) for r in got] == [
        ("Call", "Acme", "Account", "Jane Doe", "Contact"),
        ("Email", "Big deal", "Opportunity", "Lee Lead", "Lead"),
        ("Orphan", None, None, None, None)]
    got = rows(org, "SELECT Subject FROM Task WHERE What.Type = 'Opportunity'")
    assert [r["Subject"] for r in got] == ["Email"]


def test_deleted_parent_reads_as_null_except_in_query_all(org: Org) -> None:
    got = rows(org, "SELECT What.Name FROM Task WHERE Subject = 'Orphan'")
    assert got[0]["What.Name"] is None
    got = rows(org, "SELECT What.Name FROM Task WHERE Subject = 'Orphan'", include_deleted=True)
    assert got[0]["What.Name"] == "Gone"


def test_child_subquery(org: Org) -> None:
    c = compile_(org, "SELECT Name, (SELECT LastName, Account.Name FROM Contacts WHERE LastName != 'Poe' "
                      "ORDER BY LastName DESC LIMIT 1) FROM Account ORDER BY Name")
    (child,) = c.children
    assert child.relationship == "Contacts"
    assert child.query.columns[0].name == "__parent" and child.query.columns[-1].name == "__id"
    parent_ids = [r[-1] for r in org.store.cursor().execute(c.sql, c.params).fetchall()]
    got = org.store.cursor().execute(child.query.sql, [*child.query.params, parent_ids]).fetchall()
    assert [(r[0], r[1]) for r in got] == [(org.ids["acme"], "Roe")]  # LIMIT is per parent
    unlimited = compile_(org, "SELECT (SELECT LastName FROM Contacts) FROM Account").children[0].query
    got = org.store.cursor().execute(unlimited.sql, [*unlimited.params, parent_ids]).fetchall()
    assert sorted(r[1] for r in got) == ["Doe", "Poe", "Roe"]  # deleted child excluded
    all_rows = compile_(org, "SELECT (SELECT LastName FROM Contacts) FROM Account", include_deleted=True)
    q = all_rows.children[0].query
    got = org.store.cursor().execute(q.sql, [*q.params, parent_ids]).fetchall()
    assert sorted(r[1] for r in got) == ["Dead", "Doe", "Poe", "Roe"]


def test_child_subquery_through_custom_relationship(org: Org) -> None:
    c = compile_(org, "select Name,(select Name from invoices__r) from Account")
    assert [ch.relationship for ch in c.children] == ["Invoices__r"]


# --- compound, formula, blob -----------------------------------------------------------------


def test_compound_address_struct(org: Org) -> None:
    c = compile_(org, "SELECT Name, BillingAddress FROM Account ORDER BY Name")
    assert c.columns[1].kind == "compound"
    got = rows(org, "SELECT Name, BillingAddress FROM Account WHERE Name = 'Acme'")
    addr = got[0]["BillingAddress"]
    assert list(addr) == ["city", "country", "geocodeAccuracy", "latitude", "longitude", "postalCode",
                          "state", "street"]
    assert addr["city"] == "Paris" and addr["street"] == "2 Place Jussieu" and addr["state"] is None
    assert rows(org, "SELECT BillingAddress FROM Account WHERE Name = 'Nulls'")[0]["BillingAddress"] is None


def test_formula_field_inlined(org: Org) -> None:
    got = rows(org, "SELECT ExpectedRevenue FROM Opportunity WHERE ExpectedRevenue > 400")
    assert got[0]["ExpectedRevenue"] == 500


def test_blob_column_is_record_id(org: Org) -> None:
    (aid,) = org.add("Attachment", [{"Name": "a.txt", "ParentId": org.ids["acme"], "Body": b"hello"}])
    c = compile_(org, "SELECT Name, Body FROM Attachment")
    assert c.columns[1].kind == "blob"
    assert rows(org, "SELECT Name, Body FROM Attachment")[0]["Body"] == aid


# --- operators -------------------------------------------------------------------------------


@pytest.mark.parametrize("where, expected", [
    ("Name = 'ACME'", ["Acme"]),
    ("Name != 'acme'", ["50% off_sale", "Nulls", "beta corp"]),
    ("Name <> 'acme'", ["50% off_sale", "Nulls", "beta corp"]),
    ("Type != 'Prospect'", ["Acme", "Nulls"]),  # != matches nulls
    ("Type = null", ["Nulls"]),
    ("Type != null", ["50% off_sale", "Acme", "beta corp"]),
    ("AnnualRevenue > 50", ["50% off_sale", "Acme"]),
    ("AnnualRevenue >= 50", ["50% off_sale", "Acme", "beta corp"]),
    ("AnnualRevenue < 75", ["beta corp"]),
    ("AnnualRevenue <= 75.0", ["50% off_sale", "beta corp"]),
    ("Type IN ('prospect', 'Other')", ["50% off_sale", "beta corp"]),
    ("Type NOT IN ('Prospect')", ["Acme", "Nulls"]),
    ("Type IN ('Prospect', null)", ["50% off_sale", "Nulls", "beta corp"]),
    ("Name LIKE 'a%'", ["Acme"]),
    ("Name LIKE '%CORP'", ["beta corp"]),
    ("Name LIKE 'B_ta%'", ["beta corp"]),
    ("Name LIKE '50\\% off\\_%'", ["50% off_sale"]),
    ("Name LIKE '%\\%%'", ["50% off_sale"]),
    ("Name LIKE '%\\_%'", ["50% off_sale"]),
    ("Regions__c INCLUDES ('APAC')", ["50% off_sale", "Acme"]),
    ("Regions__c INCLUDES ('apac;emea')", ["50% off_sale", "Acme"]),
    ("Regions__c INCLUDES ('APAC;AMER', 'nothing')", ["50% off_sale"]),
    ("Regions__c INCLUDES ('AMER', 'EMEA')", ["50% off_sale", "Acme", "beta corp"]),
    ("Regions__c EXCLUDES ('EMEA')", ["Nulls", "beta corp"]),
    ("NOT Name = 'Acme'", ["50% off_sale", "Nulls", "beta corp"]),
    ("NOT (Type = 'Prospect' OR Name = 'Acme')", ["Nulls"]),
    ("(Type = 'Prospect' OR Name = 'Acme') AND AnnualRevenue > 60", ["50% off_sale", "Acme"]),
    ("Type = 'Prospect' AND (AnnualRevenue > 60 OR Name = 'Beta Corp')", ["50% off_sale", "beta corp"]),
    ("IsDeleted = false", ["50% off_sale", "Acme", "Nulls", "beta corp"]),
    ("IsDeleted = true", []),
    ("Customer_Since__c = 2020-01-01", ["Acme"]),
    ("Customer_Since__c > 2020-01-01", ["beta corp"]),
    ("Customer_Since__c = THIS_MONTH", ["beta corp"]),
    ("Customer_Since__c < THIS_MONTH", ["Acme"]),
    ("CreatedDate = TODAY", ["Acme"]),  # 2024-05-15 08:00 UTC is 01:00 in LA
    ("CreatedDate = YESTERDAY", []),
    ("CreatedDate = N_DAYS_AGO:2", ["beta corp"]),  # 2024-05-14 05:00 UTC is still May 13 in LA
    ("CreatedDate = LAST_N_DAYS:2", ["Acme", "beta corp"]),
    ("CreatedDate < THIS_YEAR", ["50% off_sale", "Nulls"]),
    ("CreatedDate > LAST_YEAR", ["Acme", "beta corp"]),
    ("CreatedDate >= LAST_YEAR", ["50% off_sale", "Acme", "beta corp"]),
    ("CreatedDate <= LAST_YEAR", ["50% off_sale", "Nulls"]),
    ("CreatedDate != THIS_YEAR", ["50% off_sale", "Nulls"]),
    ("CreatedDate IN (TODAY, N_YEARS_AGO:2)", ["Acme", "Nulls"]),
    ("CALENDAR_YEAR(CreatedDate) = 2023", ["50% off_sale"]),
    ("DAY_ONLY(CreatedDate) = 2024-05-14", ["beta corp"]),
    ("SystemModstamp = 2024-05-15T10:00:00.500Z", ["Acme"]),
    ("SystemModstamp > 2024-05-15T03:00:00-07:00", ["Acme"]),
    ("SystemModstamp < 2017-01-01T00:00:00+0000", ["50% off_sale"]),
    ("Owner.Name LIKE 'ada%'", ["50% off_sale", "Acme"]),
    ("Parent.Name = 'Acme'", ["beta corp"]),
])
def test_operators(org: Org, where: str, expected: list[str]) -> None:
    assert names(org, where) == expected


def test_id_filters_normalize_15_char_ids(org: Org) -> None:
    acme = org.ids["acme"]
    assert names(org, f"Id = '{acme[:15]}'") == ["Acme"]
    assert names(org, f"Id = '{acme.lower()[:15]}{acme[15:].lower()}'") == ["Acme"]
    assert names(org, f"Id IN ('{acme[:15]}', '{org.ids['beta']}')") == ["Acme", "beta corp"]
    assert names(org, f"OwnerId = '{org.ids['u2'][:15]}'") == ["Nulls", "beta corp"]
    assert names(org, "ParentId = ''") == ["50% off_sale", "Acme", "Nulls"]
    assert to18(acme[:15]) == acme


def test_semi_join(org: Org) -> None:
    assert names(org, "Id IN (SELECT AccountId FROM Contact WHERE LastName = 'Poe')") == ["beta corp"]
    assert names(org, "Id NOT IN (SELECT AccountId FROM Contact)") == ["50% off_sale", "Nulls"]


# --- deletions, ordering, paging, aggregates --------------------------------------------------


def test_deleted_rows(org: Org) -> None:
    assert "Gone" not in names(org, "Name != null")
    assert names(org, "IsDeleted = true", include_deleted=True) == ["Gone"]
    assert rows(org, "SELECT COUNT() FROM Account", include_deleted=True) == [{"count": 5}]


def test_order_by_nulls(org: Org) -> None:
    asc = [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Type, Name")]
    assert asc == ["Nulls", "Acme", "50% off_sale", "beta corp"]  # NULLS FIRST by default on ASC
    desc = [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Type DESC, Name")]
    assert desc == ["50% off_sale", "beta corp", "Acme", "Nulls"]  # NULLS LAST on DESC
    last = [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Type ASC NULLS LAST, Name DESC")]
    assert last == ["Acme", "beta corp", "50% off_sale", "Nulls"]
    ci = [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Name")]
    assert ci == ["50% off_sale", "Acme", "beta corp", "Nulls"]  # case-insensitive like Salesforce


def test_limit_offset(org: Org) -> None:
    all_names = [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Name")]
    assert [r["Name"] for r in rows(org, "SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1")] == (
        all_names[1:3])
    assert rows(org, "SELECT COUNT() FROM Account LIMIT 2") == [{"count": 2}]


def test_aggregates(org: Org) -> None:
    c = compile_(org, "SELECT Type, COUNT(Id), MAX(AnnualRevenue) top, SUM(AnnualRevenue) FROM Account "
                      "GROUP BY Type ORDER BY Type")
    assert c.aggregate and [col.path for col in c.columns] == [("Type",), ("expr0",), ("top",), ("expr1",)]
    got = rows(org, "SELECT Type, COUNT(Id), MAX(AnnualRevenue) top, SUM(AnnualRevenue) FROM Account "
                    "GROUP BY Type ORDER BY Type")
    assert [tuple(r.values()) for r in got] == [
        (None, 1, None, None), ("Customer - Direct", 1, Decimal(100), Decimal(100)),
        ("Prospect", 2, Decimal(75), Decimal(125))]
    got = rows(org, "SELECT COUNT(Id) n, COUNT_DISTINCT(Type), MIN(Name), AVG(AnnualRevenue) FROM Account")
    assert got == [{"n": 4, "expr0": 2, "expr1": "50% off_sale", "expr2": 75.0}]
    got = rows(org, "SELECT Account.Name, COUNT(Id) FROM Contact GROUP BY Account.Name "
                    "ORDER BY COUNT(Id) DESC")
    assert got == [{"Name": "Acme", "expr0": 2}, {"Name": "beta corp", "expr0": 1}]
    got = rows(org, "SELECT CALENDAR_YEAR(CreatedDate), COUNT(Id) FROM Account "
                    "GROUP BY CALENDAR_YEAR(CreatedDate) ORDER BY CALENDAR_YEAR(CreatedDate)")
    assert got == [{"expr0": 2022, "expr1": 1}, {"expr0": 2023, "expr1": 1}, {"expr0": 2024, "expr1": 2}]


def test_count_only(org: Org) -> None:
    c = compile_(org, "SELECT COUNT() FROM Contact WHERE Account.Name = 'Acme'")
    assert c.count_only and not c.children
    assert org.store.cursor().execute(c.sql, c.params).fetchall() == [(2,)]


def test_fields_standard_and_all(org: Org) -> None:
    c = compile_(org, "SELECT FIELDS(ALL) FROM Account LIMIT 200")
    headers = [col.header for col in c.columns]
    assert "Regions__c" in headers and "BillingAddress" in headers and headers[-1] == "Id"
    c = compile_(org, "SELECT FIELDS(STANDARD) FROM Account")
    assert "Regions__c" not in [col.header for col in c.columns]
    assert len(rows(org, "SELECT FIELDS(CUSTOM) FROM Account LIMIT 5")) == 4


def test_values_are_bound_parameters(org: Org) -> None:
    c = compile_(org, "SELECT Id FROM Account WHERE Name = 'x\\' OR \\'1\\'=\\'1' AND AnnualRevenue > 5")
    assert "1'" not in c.sql and c.params == ["x' or '1'='1", Decimal(5)]
    assert rows(org, "SELECT Id FROM Account WHERE Name = 'x\\' OR \\'1\\'=\\'1'") == []
