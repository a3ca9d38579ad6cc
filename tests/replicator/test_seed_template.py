"""Seed templates and masking rules on their own: values rendered, never query text; one-line errors
naming the file and key; fakes deterministic per secret and value, within the field's length."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pytest

from replicator.seed.masking import Masker, MaskingProblem, MaskRule, parse_rule, personal_kind
from replicator.seed.order import RequiredCycle, load_order
from replicator.seed.template import TemplateProblem, load_template, shipped_folder, template_names

TODAY = dt.date(2026, 12, 4)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_values_render_relative_dates_and_parameters(tmp_path: Path) -> None:
    path = write(tmp_path, """
[root]
object = "Account"
limit = 500
filter = [
  { field = "BillingCountry", op = "=", value = "{{ param.country }}" },
  { field = "CreatedDate", op = ">=", value = "{{ today - days(730) }}" },
  { field = "Type", op = "in", value = ["Prospect", "{{ param.kind }}"] },
  { field = "Website", op = "is null" },
]
[[root.children]]
relationship = "Contacts"
limit = 10
[[root.children.children]]
relationship = "Cases"
""")
    t = load_template(path, {"country": "Germany'; DROP TABLE x; --", "kind": "Other"}, today=TODAY)
    values = [c.value for c in t.root.filter]
    assert values == ["Germany'; DROP TABLE x; --", "2024-12-04", ["Prospect", "Other"], None]
    assert [n.key for n in t.nodes()] == ["root", "root.children[0]", "root.children[0].children[0]"]
    assert t.root.children[0].children[0].relationship == "Cases"


@pytest.mark.parametrize(("text", "message"), [
    ('[root]\nobject = "Account"\nfilter = [{ field = "Name", value = "{{ param.who }}" }]\n',
     "t.toml: root.filter[0].value: cannot render '{{ param.who }}'"),
    ('[root]\nobject = "Account"\nfilter = [{ field = "Name", value = "{{ \'\'.__class__.__mro__ }}" }]\n',
     "t.toml: root.filter[0].value: cannot render"),
    ('[root]\nobject = "Account"\nfilter = [{ field = "Name", op = "~", value = 1 }]\n',
     "t.toml: root.filter[0].op: '~' is not an operator"),
    ('[root]\nobject = "Account"\nfilter = [{ field = "Name", op = "in", value = "x" }]\n',
     "t.toml: root.filter[0].value: 'in' needs a list"),
    ('[root]\nobject = "Account"\nfilter = [{ field = "Name; DROP", value = 1 }]\n',
     "t.toml: root.filter[0].field: 'Name; DROP' is not an API name"),
    ('[root]\nobject = "Account"\nlimit = 0\n', "t.toml: root.limit: must be a positive whole number"),
    ('[root]\nobject = "Account"\nsize = 3\n', "t.toml: root.size: unknown key"),
    ('[root]\nobject = "Account"\n[[root.children]]\nlimit = 3\n',
     "t.toml: root.children[0]: needs 'relationship'"),
    ('name = "x"\n', "t.toml: root: missing"),
    ('[root\n', "t.toml: not TOML"),
    ('[root]\nobject = "Account"\n[match]\nusers = "nobody"\n',
     "t.toml: match.users: 'nobody' is not one of"),
])
def test_bad_templates_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        load_template(write(tmp_path, text), {}, today=TODAY)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_shipped_templates_read() -> None:
    names = template_names([shipped_folder()])
    assert {"accounts_360", "recent_by_country"} <= set(names)
    t = load_template(names["recent_by_country"], {"country": "Germany", "years": "2"}, today=TODAY)
    assert [c.value for c in t.root.filter] == ["Germany", "2024-12-04"]


def test_masks_are_deterministic_per_secret_and_value() -> None:
    a, b = Masker(b"one"), Masker(b"two")
    email = MaskRule("email")
    same = a.value(email, "Ann@Acme.com")
    assert same == a.value(email, "ann@acme.com ") == Masker(b"one").value(email, "ann@acme.com")
    assert a.value(email, "ann@acme.com") != b.value(email, "ann@acme.com")
    assert a.value(email, "ann@acme.com") != a.value(email, "bob@acme.com")
    phone = a.value(MaskRule("phone"), "+49 30 1234567")
    assert re.fullmatch(r"[+]?[0-9 ().-]{7,20}", phone)  # passes the usual phone validation rule
    assert len(a.value(MaskRule("text"), "a long description", 10)) == 10
    shifted = a.value(MaskRule("date_shift", 30), dt.date(1980, 5, 17))
    assert abs((shifted - dt.date(1980, 5, 17)).days) <= 30
    assert a.value(MaskRule("pattern", "ID-###-??"), "x")[:3] == "ID-"
    assert a.value(MaskRule("null"), "x") is None and a.value(MaskRule("fixed", "n/a"), None) == "n/a"


def test_a_column_masks_each_value_once_and_keeps_its_type() -> None:
    masker = Masker(b"k")
    dates = pa.array([dt.date(1990, 1, 1), None, dt.date(1990, 1, 1)], pa.date32())
    out = masker.column(MaskRule("date_shift", 10), dates)
    assert out.type == pa.date32() and out[1].as_py() is None and out[0] == out[2]
    names = masker.column(MaskRule("last_name"), pa.array(["Smith", "Jones", "Smith"]))
    assert names[0] == names[2] != names[1]


def test_fakes_need_a_secret_and_rules_are_checked() -> None:
    with pytest.raises(MaskingProblem, match="REPLICATOR_SEED_SECRET"):
        Masker(None).value(MaskRule("email"), "ann@acme.com")
    assert Masker(None).value(MaskRule("fixed", "x"), "y") == "x"
    assert parse_rule({"date_shift": 5}) == MaskRule("date_shift", 5)
    for bad in ("scramble", {"date_shift": 0}, {"pattern": "no placeholders"}, "fixed", 3):
        with pytest.raises(MaskingProblem):
            parse_rule(bad)


def test_personal_fields_are_recognised_from_describe() -> None:
    assert personal_kind("Email", "email") == "email"
    assert personal_kind("Phone", "phone") == "phone"
    assert personal_kind("FirstName", "string") == "first_name"
    assert personal_kind("MailingStreet", "textarea") == "street"
    assert personal_kind("Birthdate", "date") == "date_shift"
    assert personal_kind("Industry", "picklist") is None


def test_load_order_defers_self_lookups_and_breaks_cycles_on_a_nillable_lookup() -> None:
    edges = {"Account": [("ParentId", "Account", False)],
             "Contact": [("AccountId", "Account", False), ("ReportsToId", "Contact", False)],
             "Region__c": [("Primary_Office__c", "Office__c", False)],
             "Office__c": [("Region__c", "Region__c", True)],
             "Task": [("WhatId", "Account", False), ("WhoId", "Contact", False)]}
    order, deferred = load_order(edges)
    assert deferred == {("Account", "ParentId"), ("Contact", "ReportsToId"),
                        ("Region__c", "Primary_Office__c")}
    assert order.index("Account") < order.index("Contact") < order.index("Task")
    assert order.index("Region__c") < order.index("Office__c")


def test_a_cycle_of_required_lookups_is_refused() -> None:
    with pytest.raises(RequiredCycle, match=r"a cycle of required references \(A__c.B__c -> B__c.A__c\)"):
        load_order({"A__c": [("B__c", "B__c", True)], "B__c": [("A__c", "A__c", True)]})
    with pytest.raises(RequiredCycle, match=r"Node__c\.Parent__c is a required lookup to its own object"):
        load_order({"Node__c": [("Parent__c", "Node__c", True)]})
