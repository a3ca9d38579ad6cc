"""Salesforce formulas compiled to DuckDB SQL (sfemu/formula.py), evaluated on real tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb
import pytest

from sfemu.formula import BOOLEAN, FormulaCompiler, FormulaError
from sfemu.schema import Schema

NOW = datetime(2024, 5, 1, 12, 30)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load()


@pytest.fixture
def db() -> duckdb.DuckDBPyConnection:
    """Staged Account rows (new values), their old values, and a parent Account table."""
    con = duckdb.connect()
    con.execute('CREATE TABLE "Account" ("Id" VARCHAR, "Name" VARCHAR, "Industry" VARCHAR)')
    con.execute("INSERT INTO \"Account\" VALUES ('001P', 'Parent Co', 'Banking')")
    cols = ('"_row" INTEGER, "Id" VARCHAR, "Name" VARCHAR, "Type" VARCHAR, "Phone" VARCHAR, '
            '"ParentId" VARCHAR, "AnnualRevenue" DECIMAL(18,0), "Rating" VARCHAR, "Regions__c" VARCHAR, '
            '"Credit_Limit__c" DECIMAL(16,2), "Customer_Since__c" DATE, "Is_Key_Account__c" BOOLEAN, '
            '"NumberOfEmployees" INTEGER')
    con.execute(f"CREATE TABLE staged ({cols})")
    con.execute(f"CREATE TABLE old ({cols})")
    con.execute("""INSERT INTO staged VALUES
        (0, '001A', 'Acme', 'Customer - Direct', '+1 (555) 010-2000', '001P', 20000000, NULL, 'EMEA;APAC',
         -5.5, DATE '2020-02-29', TRUE, 120),
        (1, '001B', 'Bravo', NULL, 'call me', NULL, NULL, 'Hot', NULL, NULL, NULL, FALSE, NULL)""")
    con.execute("""INSERT INTO old VALUES
        (0, '001A', 'Acme Old', 'Prospect', NULL, NULL, 1, NULL, NULL, NULL, NULL, FALSE, 100),
        (1, '001B', 'Bravo', NULL, 'call me', NULL, NULL, 'Hot', NULL, NULL, NULL, FALSE, NULL)""")
    return con


def evaluate(schema: Schema, con: duckdb.DuckDBPyConnection, formula: str, *, has_old: bool = False,
             expect: str | None = None) -> list[Any]:
    """The formula's value for each staged row, in _row order."""
    fc = FormulaCompiler(schema, schema.get("Account"), has_old=has_old, now=NOW)
    sql = fc.compile(formula, "Test rule", expect).sql
    rows = con.execute(f'SELECT {sql} {fc.from_sql("staged", "old" if has_old else None)} ORDER BY s."_row"',
                       fc.params).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("formula, expected", [
    ('ISBLANK(Phone)', [False, False]),
    ('ISBLANK(Rating)', [True, False]),
    ('ISBLANK(TEXT(Rating))', [True, False]),
    ('ISBLANK(AnnualRevenue)', [False, True]),
    ('ISNULL(Type)', [False, True]),
    ('ISPICKVAL(Type, "Customer - Direct")', [True, False]),
    ('AND(ISPICKVAL(Type, "Customer - Direct"), AnnualRevenue > 1000000)', [True, False]),
    ('OR(Credit_Limit__c < 0, Rating = "Hot")', [True, True]),
    ('NOT(Is_Key_Account__c)', [False, True]),
    ('Is_Key_Account__c && NumberOfEmployees >= 100 || Name == "Bravo"', [True, True]),
    ('!Is_Key_Account__c', [False, True]),
    ('Name <> "Acme" && Name != "X"', [False, True]),
    ('REGEX(Phone, "[+]?[0-9 ().-]{7,20}")', [True, False]),
    ('INCLUDES(Regions__c, "APAC")', [True, False]),
    ('CONTAINS(Name, "cm")', [True, False]),
    ('BEGINS(Name, "Br")', [False, True]),
    ('Customer_Since__c < DATE(2021, 1, 1)', [True, False]),
    ('Customer_Since__c < TODAY()', [True, False]),
])
def test_conditions(schema, db, formula, expected):
    assert evaluate(schema, db, formula, expect=BOOLEAN) == expected


@pytest.mark.parametrize("formula, expected", [
    ('"Name: " & Name & " (" & TEXT(NumberOfEmployees) & ")"', ["Name: Acme (120)", "Name: Bravo ()"]),
    ('UPPER(LEFT(Name, 2)) & LOWER(RIGHT(Name, 2)) & MID(Name, 2, 2)', ["ACmecm", "BRvora"]),
    ('LEN(Phone)', [17, 7]),
    ('LEN(Type)', [17, 0]),
    ('TRIM("  x  ")', ["x", "x"]),
    ('IF(ISBLANK(TEXT(Rating)), "none", TEXT(Rating))', ["none", "Hot"]),
    ('CASE(Name, "Acme", 1, "Bravo", 2, 0)', [1, 2]),
    ('BLANKVALUE(Type, "Unknown")', ["Customer - Direct", "Unknown"]),
    ('NULLVALUE(AnnualRevenue, 0) / 1000000', [20, 0]),
    ('ABS(Credit_Limit__c) * 2 + 1', [12, None]),
    ('ROUND(VALUE("3.14159"), 2)', [3.14, 3.14]),
    ('MAX(1, 5, 3) - MIN(4, 2) + 2 ^ 3', [11, 11]),
    ('YEAR(Customer_Since__c) * 10000 + MONTH(Customer_Since__c) * 100 + DAY(Customer_Since__c)',
     [20200229, None]),
    ('Customer_Since__c + 1', [date(2020, 3, 1), None]),
    ('TODAY() - DATE(2024, 4, 1)', [30, 30]),
    ('NOW()', [NOW, NOW]),
    ('Parent.Name & "/" & Parent.Industry', ["Parent Co/Banking", "/"]),
])
def test_values(schema, db, formula, expected):
    assert evaluate(schema, db, formula) == expected


def test_prior_value_and_changes_read_the_old_table(schema, db):
    assert evaluate(schema, db, "PRIORVALUE(Name)", has_old=True) == ["Acme Old", "Bravo"]
    assert evaluate(schema, db, "ISCHANGED(Name)", has_old=True) == [True, False]
    assert evaluate(schema, db, "ISCHANGED(Phone)", has_old=True) == [True, False]
    assert evaluate(schema, db, "ISNEW()", has_old=True) == [False, False]
    # On inserts there is no old row: ISNEW() is true, nothing changed, PRIORVALUE is the new value.
    assert evaluate(schema, db, "ISNEW()") == [True, True]
    assert evaluate(schema, db, "ISCHANGED(Name)") == [False, False]
    assert evaluate(schema, db, "PRIORVALUE(Name)") == ["Acme", "Bravo"]


def test_string_literals_are_bound_parameters_not_sql(schema, db):
    nasty = "x' OR 1=1 --"
    fc = FormulaCompiler(schema, schema.get("Account"), has_old=False, now=NOW)
    sql = fc.compile(f'Name = "{nasty}"', "Test rule").sql
    assert nasty not in sql and nasty in fc.params.values()
    assert evaluate(schema, db, f'Name = "{nasty}"') == [False, False]


def test_formula_fields_are_inlined(schema):
    fc = FormulaCompiler(schema, schema.get("Opportunity"), has_old=False, now=NOW)
    sql = fc.compile("ExpectedRevenue > 10", "Test rule", BOOLEAN).sql
    assert '"Amount"' in sql and '"Probability"' in sql


@pytest.mark.parametrize("formula, message", [
    ("AND(ISBLANK(Phone)", "Rule X: Syntax error. Missing ')'"),
    ("Phone__c = 1", "Rule X: Field Phone__c does not exist. Check spelling."),
    ("Parent.Nope = 1", "Rule X: Field Nope does not exist. Check spelling."),
    ("Nope.Name = 1", "Rule X: Field Nope does not exist. Check spelling."),
    ("FOO(Name)", "Rule X: Unknown function FOO. Check spelling."),
    ("LEFT(Name)", "Rule X: Incorrect number of parameters for function 'LEFT()'. Expected 2, received 1"),
    ("Name = 'a' 'b'", "Rule X: Syntax error. Extra ''b''"),
    ("Name # 1", "Rule X: Syntax error. Found '#'"),
    ("BillingAddress = 1", "Rule X: Field BillingAddress is a compound field"),
    ("PRIORVALUE(1)", "Rule X: PRIORVALUE() needs a field of the record"),
])
def test_errors_name_the_rule(schema, formula, message):
    fc = FormulaCompiler(schema, schema.get("Account"), has_old=True, now=NOW)
    with pytest.raises(FormulaError) as info:
        fc.compile(formula, "Rule X")
    assert str(info.value).startswith(message)


def test_a_condition_must_be_true_or_false(schema):
    fc = FormulaCompiler(schema, schema.get("Account"), has_old=False, now=NOW)
    with pytest.raises(FormulaError, match="incompatible with expected data type"):
        fc.compile("Name & 'x'", "Rule X", BOOLEAN)
