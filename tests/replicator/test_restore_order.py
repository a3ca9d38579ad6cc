"""The parent-first order of a load and how its cycles are broken (pure: models built by hand)."""

from __future__ import annotations

from replicator.restore.model import ObjectModel
from replicator.restore.order import load_order


def model(name: str, **references: tuple[tuple[str, ...], bool]) -> ObjectModel:
    return ObjectModel(name, True, tuple(references), tuple(references), dict(references), (),
                       dict.fromkeys(references, "reference"))


def test_parents_come_first_and_a_self_lookup_is_deferred() -> None:
    models = {"Account": model("Account", ParentId=(("Account",), False), OwnerId=(("User",), True)),
              "Contact": model("Contact", AccountId=(("Account",), False), ReportsToId=(("Contact",), False)),
              "Task": model("Task", WhatId=(("Account", "Opportunity"), False),
                            WhoId=(("Contact", "Lead"), False))}
    order = load_order(models, set(models))
    assert order.objects == ("Account", "Contact", "Task")
    assert order.deferred == {"Account": frozenset({"ParentId"}), "Contact": frozenset({"ReportsToId"})}
    assert [c.objects for c in order.cycles] == [("Account",), ("Contact",)]


def test_two_objects_that_look_each_other_up_defer_the_optional_side() -> None:
    models = {"Office__c": model("Office__c", Region__c=(("Region__c",), True)),
              "Region__c": model("Region__c", Primary_Office__c=(("Office__c",), False))}
    order = load_order(models, set(models))
    assert order.objects == ("Region__c", "Office__c")  # the required reference decides who goes first
    assert order.deferred == {"Region__c": frozenset({"Primary_Office__c"})}
    assert order.cycles[0].unbreakable == ()


def test_a_required_reference_inside_a_cycle_is_reported_never_dropped() -> None:
    models = {"A__c": model("A__c", B__c=(("B__c",), True)), "B__c": model("B__c", A__c=(("A__c",), True))}
    order = load_order(models, set(models))
    assert order.cycles[0].unbreakable == ("A__c.B__c",) and not order.deferred
    assert "required references inside the cycle" in order.cycles[0].text()


def test_links_to_documents_load_after_the_versions_that_make_them() -> None:
    models = {"ContentDocumentLink": model("ContentDocumentLink",
                                           ContentDocumentId=(("ContentDocument",), True)),
              "ContentVersion": model("ContentVersion", ContentDocumentId=(("ContentDocument",), False))}
    order = load_order(models, set(models))
    assert order.objects == ("ContentVersion", "ContentDocumentLink") and not order.cycles
