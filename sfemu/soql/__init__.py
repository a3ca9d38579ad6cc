"""SOQL for the emulator: a hand-written parser and a compiler to DuckDB SQL over the store.

Public API: compile_query, SoqlError, Column, ChildQuery,
CompiledQuery.
"""

from sfemu.soql.compiled import ChildQuery, Column, CompiledQuery
from sfemu.soql.compiler import compile_query
from sfemu.soql.errors import SoqlError

__all__ = ["ChildQuery", "Column", "CompiledQuery", "SoqlError", "compile_query"]
