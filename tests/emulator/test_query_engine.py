"""The query engine on a small hand-made org: spooled paging, REST JSON shapes, Bulk CSV formats, expiry."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest

from sfemu.errors import SalesforceError
from sfemu.faults import FaultConfig
from sfemu.org import EmulatedOrg, OrgSettings
from sfemu.query import query_engine
from sfemu.results import Spool

CREATED = datetime(2020, 10, 22, 21, 3, 23, 123000)


def _append(org: EmulatedOrg, name: str, rows: dict[str, list]) -> list[str]:
    obj = org.schema.get(name)
    ids = org.store.new_ids(obj, len(next(iter(rows.values()))))
    org.store.append(obj, [pa.table({"Id": ids, **rows})])
    return ids


@pytest.fixture
def org(tmp_path) -> EmulatedOrg:
    """Accounts with every awkward value, an owner, contacts on the first account, deleted rows."""
    org = EmulatedOrg(OrgSettings(state_dir=tmp_path / "org"))
    (user,) = _append(org, "User", {"Username": ["ada@x.test"], "LastName": ["Lovelace"],
                                    "Name": ["Ada Lovelace"]})
    accounts = _append(org, "Account", {
        "Name": ['Acme "Quoted", Inc.', "Zürich AG ✓", "Multi\nLine", "Plain", "Gone"],
        "OwnerId": [user, user, None, user, user],
        "Description": ["", None, "line1\r\nline2", None, None],
        "AnnualRevenue": [Decimal(950000000), None, Decimal(0), Decimal(12), None],
        "ShippingLatitude": [3.0, 1e20, 1.5e-7, None, None],
        "NumberOfEmployees": [12, None, 0, 7, None],
        "Is_Key_Account__c": [True, False, False, None, False],
        "Customer_Since__c": [date(2020, 11, 16), None, None, None, None],
        "Regions__c": ["EMEA;APAC", None, None, None, None],
        "BillingCity": ["Paris", None, None, None, None],
        "BillingPostalCode": ["75251", None, None, None, None],
        "CreatedDate": [CREATED] * 5,
        "IsDeleted": [False, False, False, False, True],
        "_DeletedAt": [None, None, None, None, CREATED],
    })
    _append(org, "Contact", {"LastName": ["Doe", "Roe"], "AccountId": [accounts[0]] * 2,
                             "IsDeleted": [False, False]})
    _append(org, "Office__c", {"Name": ["HQ"], "Opens_At__c": [time(13, 0)], "CreatedDate": [CREATED]})
    org.accounts = accounts
    org.user_id = user
    return org


def _csv(data: bytes, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))


def test_pages_are_slices_of_one_spooled_result(org):
    result = query_engine(org).run("SELECT Id, Name FROM Account ORDER BY Id", include_deleted=False)
    assert result.id.startswith("01g") and len(result.id) == 18
    assert result.total_size == result.num_rows == 4
    pages = [result.json_records(offset, 3, "59.0") for offset in (0, 3)]
    assert [len(p) for p in pages] == [3, 1]
    assert [r["Id"] for p in pages for r in p] == org.accounts[:4]
    assert result.json_records(9, 3, "59.0") == []
    with_deleted = query_engine(org).run("SELECT Id FROM Account", include_deleted=True)
    assert with_deleted.total_size == 5


def test_spool_slices_across_batches(tmp_path, org):
    cursor = org.store.cursor()
    spool = Spool.write(cursor, "SELECT range AS n FROM range(10)", [], tmp_path / "s.arrow", batch_rows=3)
    assert spool.num_rows == 10
    assert spool.slice(2, 5).column("n").to_pylist() == [2, 3, 4, 5, 6]
    assert spool.slice(8, 50).column("n").to_pylist() == [8, 9]
    assert spool.slice(10, 5).num_rows == 0
    spool.delete()
    assert not (tmp_path / "s.arrow").exists()


def test_rest_json_shapes_and_value_formats(org):
    result = query_engine(org).run(
        "SELECT Id, Name, Owner.Name, Parent.Name, AnnualRevenue, NumberOfEmployees, ShippingLatitude, "
        "Is_Key_Account__c, Customer_Since__c, CreatedDate, BillingAddress, Regions__c, "
        "(SELECT LastName FROM Contacts ORDER BY LastName) FROM Account ORDER BY Id", include_deleted=False)
    first, second, third = result.json_records(0, 3, "61.0")
    acc = org.accounts[0]
    assert first["attributes"] == {"type": "Account", "url": f"/services/data/v61.0/sobjects/Account/{acc}"}
    owner_url = f"/services/data/v61.0/sobjects/User/{org.user_id}"
    assert first["Owner"] == {"attributes": {"type": "User", "url": owner_url}, "Name": "Ada Lovelace"}
    assert first["Parent"] is None and third["Owner"] is None
    assert list(first)[:4] == ["attributes", "Id", "Name", "Owner"]
    assert first["AnnualRevenue"] == 950000000.0 and isinstance(first["AnnualRevenue"], float)
    assert first["NumberOfEmployees"] == 12 and isinstance(first["NumberOfEmployees"], int)
    assert first["ShippingLatitude"] == 3.0 and isinstance(first["ShippingLatitude"], float)
    assert first["Is_Key_Account__c"] is True and second["Is_Key_Account__c"] is False
    assert first["Customer_Since__c"] == "2020-11-16"
    assert first["CreatedDate"] == "2020-10-22T21:03:23.123+0000"
    assert first["Regions__c"] == "EMEA;APAC"
    address = first["BillingAddress"]
    assert list(address) == sorted(address) and address["city"] == "Paris" and address["street"] is None
    assert second["BillingAddress"] is None
    contacts = first["Contacts"]
    assert contacts["totalSize"] == 2 and contacts["done"] is True
    assert [c["LastName"] for c in contacts["records"]] == ["Doe", "Roe"]
    assert contacts["records"][0]["attributes"]["type"] == "Contact"
    assert second["Contacts"] is None


def test_time_values_and_aggregates(org):
    engine = query_engine(org)
    office = engine.run("SELECT Name, Opens_At__c FROM Office__c", include_deleted=False)
    assert office.json_records(0, 10, "59.0")[0]["Opens_At__c"] == "13:00:00.000Z"
    assert _csv(office.csv_page(0, 10))[1] == ["HQ", "13:00:00.000Z"]
    count = engine.run("SELECT COUNT() FROM Account", include_deleted=False)
    assert count.total_size == 4 and count.json_records(0, 2000, "59.0") == []
    grouped = engine.run("SELECT Is_Key_Account__c, COUNT(Id) FROM Account GROUP BY Is_Key_Account__c "
                         "ORDER BY COUNT(Id) DESC", include_deleted=False)
    records = grouped.json_records(0, 10, "59.0")
    assert records[0] == {"attributes": {"type": "AggregateResult"}, "Is_Key_Account__c": False, "expr0": 2}
    assert sorted(r["expr0"] for r in records) == [1, 1, 2]


def test_bulk_csv_formats_every_type(org):
    result = query_engine(org).run(
        "SELECT Id, Name, Owner.Name, Description, AnnualRevenue, NumberOfEmployees, ShippingLatitude, "
        "Is_Key_Account__c, Customer_Since__c, CreatedDate, Regions__c FROM Account ORDER BY Id",
        include_deleted=False, bulk=True)
    data = result.csv_page(0, 10)
    rows = _csv(data)
    assert rows[0] == ["Id", "Name", "Owner.Name", "Description", "AnnualRevenue", "NumberOfEmployees",
                       "ShippingLatitude",
                       "Is_Key_Account__c", "Customer_Since__c", "CreatedDate", "Regions__c"]
    assert data.startswith(b'"Id","Name","Owner.Name"')
    first, second, third, _ = rows[1:]
    assert first[1] == 'Acme "Quoted", Inc.' and b'"Acme ""Quoted"", Inc."' in data
    assert second[1] == "Zürich AG ✓" and third[1] == "Multi\nLine" and third[3] == "line1\r\nline2"
    assert first[4:] == ["950000000", "12", "3", "true", "2020-11-16", "2020-10-22T21:03:23.123Z",
                         "EMEA;APAC"]
    assert second[6] == "100000000000000000000" and third[6] == "0.00000015"
    assert second[7] == "false"
    # null is an empty cell; an empty string is a quoted empty value
    assert b',"",' in data.split(b"\n")[1] and third[2] == ""
    assert ',,"' in data.decode().split("\n")[2]  # second row: null Description right after Owner.Name


def test_bulk_csv_delimiters_and_line_endings(org):
    result = query_engine(org).run("SELECT Id, Name FROM Account ORDER BY Id", include_deleted=False,
                                   bulk=True)
    data = result.csv_page(1, 2, delimiter="\t", line_ending="\r\n")
    assert data.count(b"\r\n") == 3 and data.startswith(b'"Id"\t"Name"\r\n')
    assert _csv(data, "\t")[1] == [org.accounts[1], "Zürich AG ✓"]


def test_soql_errors_and_query_timeout(org):
    engine = query_engine(org)
    with pytest.raises(SalesforceError) as err:
        engine.run("SELECT Nope__c FROM Account", include_deleted=False)
    assert err.value.status == 400 and err.value.error_code == "INVALID_FIELD"
    org.faults.configure(FaultConfig(query_timeout_objects=["Account"]))
    with pytest.raises(SalesforceError) as err:
        engine.run("SELECT Id FROM Account", include_deleted=False)
    assert err.value.error_code == "QUERY_TIMEOUT"


def test_idle_results_expire_after_15_minutes(org):
    engine = query_engine(org)
    kept = engine.run("SELECT Id FROM Account", include_deleted=False)
    idle = engine.run("SELECT Name FROM Account", include_deleted=False)
    org.clock.advance(10 * 60)
    assert engine.get(kept.id) is kept
    org.clock.advance(6 * 60)
    assert engine.get(kept.id) is kept  # touched 6 minutes ago
    assert engine.get(idle.id) is None
    assert not idle.spool.path.exists()
    with pytest.raises(SalesforceError) as err:
        engine.require(idle.id)
    assert err.value.error_code == "INVALID_QUERY_LOCATOR"
    engine.drop(kept.id)
    assert engine.get(kept.id) is None and not kept.spool.path.exists()


def test_blob_fields_render_as_urls(org):
    (with_body, without) = _append(org, "Attachment", {"Name": ["a.txt", "b.txt"], "Body": [b"hello", None],
                                                      "ParentId": [org.accounts[0]] * 2})
    result = query_engine(org).run("SELECT Id, Body FROM Attachment ORDER BY Id", include_deleted=False)
    first, second = result.json_records(0, 10, "59.0")
    assert first["Body"] == f"/services/data/v59.0/sobjects/Attachment/{with_body}/Body"
    assert second["Body"] is None and second["Id"] == without
