"""SOQL errors with Salesforce's codes and message shapes.

Clients match on these texts (airbyte parses `No such column '...' on entity`), so positional errors
echo the offending line with a caret and `ERROR at Row:r:Column:c`, as Salesforce does.
"""

from __future__ import annotations


class SoqlError(Exception):
    """A query Salesforce would refuse: `error_code` is the REST errorCode, `message` its text."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def located(text: str, pos: int, detail: str) -> str:
    """Salesforce's positional message: the query line, a caret under `pos`, the row/column, the detail."""
    pos = max(0, min(pos, len(text)))
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start: len(text) if line_end < 0 else line_end]
    col = pos - line_start + 1
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{detail}"


class ErrorFactory:
    """Builds located SoqlErrors for one query text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def at(self, code: str, pos: int, detail: str) -> SoqlError:
        return SoqlError(code, located(self.text, pos, detail))

    def unexpected(self, pos: int, token: str) -> SoqlError:
        return self.at("MALFORMED_QUERY", pos, f"unexpected token: '{token}'")

    def no_column(self, pos: int, name: str, entity: str) -> SoqlError:
        return self.at(
            "INVALID_FIELD", pos,
            f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be "
            "sure to append the '__c' after the custom field name. Please reference your WSDL or the "
            "describe call for the appropriate names.")

    def no_relationship(self, pos: int, name: str, where: str = "field path") -> SoqlError:
        code = "INVALID_FIELD" if where == "field path" else "INVALID_TYPE"
        return self.at(
            code, pos,
            f"Didn't understand relationship '{name}' in {where}. If you are attempting to use a custom "
            "relationship, be sure to append the '__r' after the custom relationship name. Please "
            "reference your WSDL or the describe call for the appropriate names.")

    def no_type(self, pos: int, name: str) -> SoqlError:
        return self.at(
            "INVALID_TYPE", pos,
            f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
            "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
            "call for the appropriate names.")
