"""SOQL parsing and the errors Salesforce gives for bad queries (no store needed)."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sfemu.schema import Schema
from sfemu.soql import SoqlError, compile_query
from sfemu.soql.dates import date_range
from sfemu.soql.errors import ErrorFactory
from sfemu.soql.lexer import tokenize
from sfemu.soql.parser import parse

NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load()


def compile_(schema: Schema, text: str, **kw):
    return compile_query(text, schema, now=NOW, **kw)


def error_of(schema: Schema, text: str, **kw) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        compile_(schema, text, **kw)
    return info.value


# --- tokenizer -------------------------------------------------------------------------------


@pytest.mark.parametrize("literal, expected", [
    ("2017-01-01T00:00:00Z", datetime(2017, 1, 1, tzinfo=UTC)),
    ("2017-01-01T00:00:00.000Z", datetime(2017, 1, 1, tzinfo=UTC)),
    ("2019-01-01T00:00:00.000000Z", datetime(2019, 1, 1, tzinfo=UTC)),
    ("2023-01-01T00:00:00.000+00:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2019-01-01T00:00:00.000+0000", datetime(2019, 1, 1, tzinfo=UTC)),
    ("2013-12-01T12:00:00-08:00", datetime(2013, 12, 1, 20, 0, tzinfo=UTC)),
    ("2013-12-01T12:00:00.123456+05:30", datetime(2013, 12, 1, 6, 30, 0, 123456, tzinfo=UTC)),
])
def test_datetime_literal_formats(literal: str, expected: datetime) -> None:
    tok = tokenize(literal, ErrorFactory(literal))[0]
    assert tok.kind == "datetime"
    assert tok.value == expected


def test_date_and_number_tokens() -> None:
    toks = tokenize("2024-02-29 -12.5 42", ErrorFactory(""))
    assert [(t.kind, t.value) for t in toks[:3]] == [("date", date(2024, 2, 29)), ("number", "-12.5"),
                                                     ("number", "42")]


def test_string_escapes() -> None:
    text = r"'a\'b\"c\\d\ne\rf\tg\bh\fi\u0041\%\_%_'"
    tok = tokenize(text, ErrorFactory(text))[0]
    assert tok.value == "a'b\"c\\d\ne\rf\tg\bh\fiA%_%_"
    assert tok.pattern == "a'b\"c\\\\d\ne\rf\tg\bh\fiA\\%\\_%_"


def test_string_directly_followed_by_keyword() -> None:
    q = parse("SELECT Id FROM RecordType WHERE SObjectType='Account'AND DeveloperName = 'Foo' LIMIT 1")
    assert q.where.op == "AND" and q.limit == 1


def test_whitespace_variants_and_case() -> None:
    q = parse("select\tId,\n  name\r\nfrom   account\n where\tNAME != null order by Name desc nulls first")
    assert q.sobject == "account"
    assert q.order_by[0].descending and q.order_by[0].nulls_first


# --- grammar ---------------------------------------------------------------------------------


def test_full_grammar_parses() -> None:
    q = parse("SELECT a.Id, a.Owner.Name, (SELECT LastName FROM Contacts WHERE Email != null ORDER BY "
              "LastName LIMIT 5), TYPEOF Owner WHEN User THEN Name ELSE Id END FROM Account a "
              "WHERE (Name LIKE 'A%' OR Type IN ('x', 'y')) AND NOT Industry = null "
              "WITH SECURITY_ENFORCED ORDER BY Name ASC NULLS LAST, Id LIMIT 10 OFFSET 5 FOR VIEW")
    assert q.alias == "a" and q.limit == 10 and q.offset == 5
    assert len(q.select) == 4


@pytest.mark.parametrize("text", [
    "SELECT Id FROM Account FOR REFERENCE",
    "SELECT Id FROM Account FOR UPDATE",
    "SELECT Id FROM Account WITH USER_MODE",
    "SELECT Id FROM Account USING SCOPE mine",
    "SELECT Name, COUNT(Id) cnt FROM Account GROUP BY Name",
    "SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = 2024",
    "SELECT FIELDS(STANDARD) FROM Account",
])
def test_accepted_clauses(text: str) -> None:
    parse(text)


@pytest.mark.parametrize("text, token", [
    ("SELECT Id FORM Account", "FORM"),
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "OR"),
    ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'", "AND"),
    ("SELECT Id, Name FROM Account WHERE Name IN ('a',)", ")"),
    ("SELECT Id FROM Account WHERE Name IN ()", ")"),
    ("SELECT FROM Account", "FROM"),
    ("SELECT Id FROM", "<EOF>"),
    ("SELECT Id FROM Account WHERE", "<EOF>"),
    ("SELECT Id FROM Account LIMIT x", "x"),
    ("SELECT Id FROM Account ORDER Name", "Name"),
    ("SELECT Id, FROM Account", "FROM"),
    ("SELECT Id FROM Account WHERE Name = 'a' extra", "extra"),
    ("SELECT Id FROM Account WHERE (Name = 'a'", "<EOF>"),
    ("SELECT Id FROM Account WHERE Name 'a'", "'a'"),
    ("SELECT Id, (SELECT Id, (SELECT Id FROM Contacts) FROM Contacts) FROM Account", "SELECT"),
    ("SELECT Id FROM Account GROUP BY ROLLUP(Name)", "ROLLUP"),
    ("SELECT Id FROM Account WITH FOO", "FOO"),
    ("SELECT Id FROM Account FOR LUNCH", "LUNCH"),
])
def test_malformed_unexpected_token(schema: Schema, text: str, token: str) -> None:
    e = error_of(schema, text)
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message.endswith(f"unexpected token: '{token}'")
    assert "ERROR at Row:1:Column:" in e.message


def test_unexpected_token_position(schema: Schema) -> None:
    e = error_of(schema, "SELECT Id FORM Account")
    assert e.message == ("\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\n"
                         "unexpected token: 'FORM'")


def test_error_on_second_line_reports_row(schema: Schema) -> None:
    e = error_of(schema, "SELECT Id\nFROM Account\nWHERE Nme = 'x'")
    assert e.error_code == "INVALID_FIELD"
    assert "\nWHERE Nme = 'x'\n      ^\nERROR at Row:3:Column:7\nNo such column 'Nme'" in e.message


@pytest.mark.parametrize("text", [
    "SELECT Id FROM Account WHERE SystemModstamp >= 2023-01-01T00:00:00.000 00:00",  # '+' decoded
    "SELECT Id FROM Account WHERE Name = 'unterminated",
    "SELECT Id FROM Account WHERE Name = 'bad \\q escape'",
    "SELECT Id FROM Account WHERE Name = 'a' ; DROP TABLE Account",
    "SELECT Id FROM Account WHERE CreatedDate > 2024-13-01T00:00:00Z",
])
def test_lexical_errors(schema: Schema, text: str) -> None:
    assert error_of(schema, text).error_code == "MALFORMED_QUERY"


def test_unknown_object_is_invalid_type(schema: Schema) -> None:
    e = error_of(schema, "select count() from XYZZY")
    assert e.error_code == "INVALID_TYPE"
    assert e.message == (
        "\nselect count() from XYZZY\n                    ^\nERROR at Row:1:Column:21\n"
        "sObject type 'XYZZY' is "
        "not supported. If you are attempting to use a custom object, be sure to append the '__c' after the "
        "entity name. Please reference your WSDL or the describe call for the appropriate names.")


def test_unknown_field_is_invalid_field(schema: Schema) -> None:
    e = error_of(schema, "SELECT Foo FROM Account")
    assert e.error_code == "INVALID_FIELD"
    assert e.message == (
        "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity "
        "'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the "
        "custom "
        "field name. Please reference your WSDL or the describe call for the appropriate names.")


@pytest.mark.parametrize("text, code, fragment", [
    ("SELECT Account.Foo FROM Contact", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
    ("SELECT Acount.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Acount'"),
    ("SELECT Id, (SELECT Id FROM Contactz) FROM Account", "INVALID_TYPE",
     "Didn't understand relationship 'Contactz' in FROM part of query call"),
    ("SELECT Id FROM Account WHERE SystemModstamp > 2020-01-01", "INVALID_FIELD",
     "value of filter criterion for field 'SystemModstamp' must be of type dateTime and should not be "
     "enclosed in quotes"),
    ("SELECT Id FROM Account WHERE SystemModstamp > '2020-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD",
     "must be of type string and should be enclosed"),
    ("SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_FIELD", "must be of type double"),
    ("SELECT Id FROM Account WHERE IsDeleted = 'true'", "INVALID_FIELD", "must be of type boolean"),
    ("SELECT Id FROM Account WHERE Customer_Since__c = 2020-01-01T00:00:00Z", "INVALID_FIELD",
     "must be of type date"),
    ("SELECT Id FROM Account WHERE Id = 'xyz'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: xyz"),
    ("SELECT Id FROM Contact WHERE AccountId IN ('001000000000000AAA', 'nope')",
     "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: nope"),
    ("SELECT Id FROM Account WHERE Name INCLUDES ('a')", "INVALID_QUERY_FILTER_OPERATOR", "multipicklist"),
    ("SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'", "INVALID_QUERY_FILTER_OPERATOR", "LIKE"),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS", "MALFORMED_QUERY", "LAST_N_DAYS"),
    ("SELECT Id FROM Account WHERE CreatedDate = SOMEDAY", "MALFORMED_QUERY", "SOMEDAY"),
    ("SELECT Id FROM Account WHERE CreatedDate = TODAY:3", "MALFORMED_QUERY", "TODAY"),
    ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY", "Field must be grouped or aggregated: Name"),
    ("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY", "COUNT()"),
    ("SELECT Id FROM Account WHERE COUNT(Id) > 1", "MALFORMED_QUERY", "HAVING"),
    ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY", "does not support aggregate operator SUM"),
    ("SELECT Id FROM Account WHERE BillingAddress = null", "INVALID_FIELD", "can not be filtered"),
    ("SELECT Id FROM Account ORDER BY BillingAddress", "INVALID_FIELD", "can not be sorted"),
    ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE",
     "Maximum SOQL offset allowed is 2000"),
    ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", "LIMIT of at most 200"),
    ("SELECT Id FROM Account WHERE Name IN (SELECT Id FROM Contact)", "INVALID_FIELD", "semi join"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT Name FROM Contact)", "INVALID_FIELD", "semi join"),
    ("SELECT Id, What.Phone FROM Task", "INVALID_FIELD", "No such column 'Phone' on entity 'Name'"),
    ("SELECT TYPEOF What WHEN Pizza THEN Name END FROM Task", "INVALID_FIELD", "Pizza"),
    ("SELECT Id FROM ContentDocumentLink", "MALFORMED_QUERY", "ContentDocumentLink requires a filter"),
    ("SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId != '069000000000000'", "MALFORMED_QUERY",
     "requires a filter"),
    ("SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '069000000000000' OR Id = null",
     "MALFORMED_QUERY", "requires a filter"),
])
def test_semantic_errors(schema: Schema, text: str, code: str, fragment: str) -> None:
    e = error_of(schema, text)
    assert e.error_code == code, e.message
    assert fragment in e.message


@pytest.mark.parametrize("text", [
    "SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN ('069000000000000','069000000000001')",
    "SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '001000000000000' AND IsDeleted = false",
])
def test_content_document_link_with_filter_compiles(schema: Schema, text: str) -> None:
    compile_(schema, text)


# --- Bulk API 2.0 refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("text, code, fragment", [
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "API_ERROR",
     "Aggregate Relationships not supported"),
    ("SELECT Id, TYPEOF What WHEN Account THEN Name END FROM Task", "API_ERROR", "TYPEOF"),
    ("SELECT COUNT() FROM Account", "API_ERROR", "COUNT()"),
    ("SELECT Type, COUNT(Id) FROM Account GROUP BY Type", "API_ERROR", "GROUP BY"),
    ("SELECT MAX(AnnualRevenue) FROM Account", "API_ERROR", "Aggregate"),
    ("SELECT Id FROM Account LIMIT 5 OFFSET 5", "API_ERROR", "OFFSET"),
    ("SELECT Id, Body FROM Document", "API_ERROR", "binary"),
    ("SELECT Id FROM Attachment", "INVALIDENTITY", "Entity 'Attachment' is not supported by the Bulk API."),
])
def test_bulk_refusals(schema: Schema, text: str, code: str, fragment: str) -> None:
    e = error_of(schema, text, bulk=True)
    assert (e.error_code, fragment in e.message) == (code, True), e.message


def test_bulk_compound_message_is_exact(schema: Schema) -> None:
    e = error_of(schema, "SELECT Id, BillingAddress FROM Account", bulk=True)
    assert (e.error_code, e.message) == ("API_ERROR", "Selecting compound data not supported in Bulk Query")


def test_bulk_accepts_order_limit_and_parents(schema: Schema) -> None:
    c = compile_(schema, "SELECT Id, Name, Owner.Name, BillingCity FROM Account WHERE SystemModstamp >= "
                 "2023-01-01T00:00:00.000+00:00 ORDER BY SystemModstamp LIMIT 10", bulk=True)
    headers = [col.header for col in c.columns if col.kind == "field"]
    assert headers == ["Id", "Name", "Owner.Name", "BillingCity"]


# --- date literals ---------------------------------------------------------------------------


TODAY = date(2024, 5, 15)  # a Wednesday


@pytest.mark.parametrize("word, n, start, end", [
    ("TODAY", None, date(2024, 5, 15), date(2024, 5, 16)),
    ("YESTERDAY", None, date(2024, 5, 14), date(2024, 5, 15)),
    ("TOMORROW", None, date(2024, 5, 16), date(2024, 5, 17)),
    ("THIS_WEEK", None, date(2024, 5, 12), date(2024, 5, 19)),
    ("LAST_WEEK", None, date(2024, 5, 5), date(2024, 5, 12)),
    ("NEXT_WEEK", None, date(2024, 5, 19), date(2024, 5, 26)),
    ("THIS_MONTH", None, date(2024, 5, 1), date(2024, 6, 1)),
    ("LAST_MONTH", None, date(2024, 4, 1), date(2024, 5, 1)),
    ("NEXT_MONTH", None, date(2024, 6, 1), date(2024, 7, 1)),
    ("LAST_90_DAYS", None, date(2024, 2, 15), date(2024, 5, 16)),
    ("NEXT_90_DAYS", None, date(2024, 5, 16), date(2024, 8, 14)),
    ("THIS_QUARTER", None, date(2024, 4, 1), date(2024, 7, 1)),
    ("LAST_QUARTER", None, date(2024, 1, 1), date(2024, 4, 1)),
    ("NEXT_QUARTER", None, date(2024, 7, 1), date(2024, 10, 1)),
    ("THIS_YEAR", None, date(2024, 1, 1), date(2025, 1, 1)),
    ("LAST_YEAR", None, date(2023, 1, 1), date(2024, 1, 1)),
    ("THIS_FISCAL_YEAR", None, date(2024, 1, 1), date(2025, 1, 1)),
    ("LAST_FISCAL_QUARTER", None, date(2024, 1, 1), date(2024, 4, 1)),
    ("LAST_N_DAYS", 1, date(2024, 5, 14), date(2024, 5, 16)),
    ("NEXT_N_DAYS", 2, date(2024, 5, 16), date(2024, 5, 18)),
    ("N_DAYS_AGO", 3, date(2024, 5, 12), date(2024, 5, 13)),
    ("LAST_N_WEEKS", 2, date(2024, 4, 28), date(2024, 5, 12)),
    ("N_WEEKS_AGO", 1, date(2024, 5, 5), date(2024, 5, 12)),
    ("LAST_N_MONTHS", 2, date(2024, 3, 1), date(2024, 5, 1)),
    ("NEXT_N_MONTHS", 1, date(2024, 6, 1), date(2024, 7, 1)),
    ("N_MONTHS_AGO", 5, date(2023, 12, 1), date(2024, 1, 1)),
    ("LAST_N_QUARTERS", 2, date(2023, 10, 1), date(2024, 4, 1)),
    ("N_QUARTERS_AGO", 1, date(2024, 1, 1), date(2024, 4, 1)),
    ("LAST_N_YEARS", 2, date(2022, 1, 1), date(2024, 1, 1)),
    ("NEXT_N_FISCAL_YEARS", 1, date(2025, 1, 1), date(2026, 1, 1)),
    ("N_FISCAL_YEARS_AGO", 1, date(2023, 1, 1), date(2024, 1, 1)),
])
def test_date_literal_ranges(word: str, n: int | None, start: date, end: date) -> None:
    assert date_range(word, n, TODAY) == (start, end)


def test_date_literals_use_org_time_zone(schema: Schema) -> None:
    # 2024-05-15 03:00 UTC is still May 14 in Los Angeles: TODAY there starts 2024-05-14 07:00 UTC.
    c = compile_query("SELECT Id FROM Account WHERE CreatedDate = TODAY", schema,
                      now=datetime(2024, 5, 15, 3, 0, tzinfo=UTC))
    assert c.params == [datetime(2024, 5, 14, 7, 0), datetime(2024, 5, 15, 7, 0)]
    c = compile_query("SELECT Id FROM Account WHERE CreatedDate = TODAY", schema,
                      now=datetime(2024, 5, 15, 3, 0, tzinfo=timezone(timedelta(hours=2))), tz="Europe/Paris")
    assert c.params == [datetime(2024, 5, 14, 22, 0), datetime(2024, 5, 15, 22, 0)]


# --- robustness --------------------------------------------------------------------------------


FUZZ_WORDS = [
    'SELECT', 'FROM', 'WHERE', 'Account', 'Contact', 'Task', 'Id', 'Name', 'Owner.Name', 'What.Name',
    'Who', 'Contacts', '(', ')', ',', '.', "'x'", "'", '=', '!=', 'IN', 'NOT', 'AND', 'OR', 'LIKE',
    'INCLUDES', 'TYPEOF', 'WHEN', 'THEN', 'END', 'COUNT()', 'COUNT', 'LIMIT', 'OFFSET', '5', '-1',
    'ORDER', 'BY', 'GROUP', '2024-01-01', '2024-01-01T00:00:00Z', 'TODAY', 'LAST_N_DAYS:3', ':', 'null',
    'true', 'FIELDS(ALL)', '\\', '"', '$', 'FOR', 'VIEW', 'WITH'
]
VALID = [
    "SELECT Id, Name, Owner.Name, (SELECT LastName FROM Contacts WHERE Email != null LIMIT 2) FROM Account "
    "WHERE (Name LIKE 'A%' OR Type IN ('x','y')) AND CreatedDate = LAST_N_DAYS:3 ORDER BY Name DESC LIMIT 5",
    "SELECT Id, TYPEOF What WHEN Account THEN Name ELSE Id END, Who.Name FROM Task "
    "WHERE What.Type = 'Account'",
    "SELECT Type, COUNT(Id) c, MAX(AnnualRevenue) FROM Account WHERE Regions__c INCLUDES ('a;b') "
    "GROUP BY Type",
    "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact) AND SystemModstamp > "
    "2024-01-01T00:00:00.000+00:00 OFFSET 3",
]


def test_fuzz_garbage_only_raises_soql_error(schema: Schema) -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = " ".join(rng.choice(FUZZ_WORDS) for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.5:
            text = "SELECT Id FROM Account WHERE " + text
        with contextlib.suppress(SoqlError):
            compile_(schema, text)
    for _ in range(2000):  # mutations of valid queries reach deep into the compiler
        chars = list(rng.choice(VALID))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                del chars[i]
            elif op < 0.7:
                chars.insert(i, rng.choice("()',.:=<>!%_\\ aZ09-"))
            else:
                j = rng.randrange(len(chars))
                chars[i], chars[j] = chars[j], chars[i]
        with contextlib.suppress(SoqlError):
            compile_(schema, "".join(chars), bulk=rng.random() < 0.3)
    for _ in range(500):
        text = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 40)))
        with pytest.raises(SoqlError):
            compile_(schema, text)


def test_deep_nesting_is_a_soql_error(schema: Schema) -> None:
    text = "SELECT Id FROM Account WHERE " + "(" * 5000 + "Name = 'a'" + ")" * 5000
    assert error_of(schema, text).error_code == "MALFORMED_QUERY"


def test_too_long_query(schema: Schema) -> None:
    text = "SELECT Id FROM Account WHERE Name IN (" + ",".join(["'abcdefgh'"] * 10000) + ")"
    assert error_of(schema, text).error_code == "MALFORMED_QUERY"
