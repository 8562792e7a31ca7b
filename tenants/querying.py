"""Small pieces the query modules share: text search patterns, rows grouped by key, and
the LIMIT of a statement."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Dialect,
    Integer,
    TypeDecorator,
    any_,
    bindparam,
)
from sqlalchemy.dialects.postgresql import ARRAY


def like_pattern(text: str) -> str:
    """`%text%` for LIKE/ILIKE with `\\` as the escape, so user input matches literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def grouped(rows: Iterable, column: str) -> dict[int, list[dict]]:
    """Rows (mappings) as lists keyed by one column, in the order they came."""
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row[column], []).append(dict(row))
    return found


def limit_of(rows: int | None = None, *, key: str | None = None) -> BindParameter[int]:
    """A statement's LIMIT, written into its text rather than bound: PostgreSQL cannot tell
    how many rows a bound LIMIT keeps, rates the prepared statement's generic plan for the
    worst case, and so plans the statement again on every execution (a page of residents:
    0.25 ms of its 0.33 ms in PostgreSQL). Each limit is then a statement of its own,
    planned once. `key` names the value for a statement built once and given its limit at
    each execution (tenants/residents/queries.py)."""
    return bindparam(key, rows, type_=Integer, literal_execute=True)


def any_ids(ids: list[int] | None = None, *, key: str | None = None) -> ColumnElement:
    """`ANY` of the ids as one array parameter, for `column == any_ids(ids)`: the same
    statement whatever their number. `in_` binds each id on its own, and a batch's 700
    devices made a statement of 700 parameters that psycopg converted and PostgreSQL
    parsed and planned afresh on every call. For a page's few ids `in_` stays better:
    PostgreSQL keeps one plan per count of them, where it plans `ANY` of an array of
    unknown length again on every call (the residents' reads by id, measured). `key`
    names the ids for a statement built once and given them at each execution."""
    return any_(bindparam(key, ids, type_=IdArray()))


class IdArray(TypeDecorator):
    """Integer ids sent as PostgreSQL's text of an array, `{1,2,3}`, in a parameter cast
    to `bigint[]`: psycopg writes a list element by element in Python, four times as
    long per id (0.7 ms of the gateway CPU of a device platform's batch, 2,400 ids).
    The text goes untyped, so PostgreSQL reads it once, as the array the cast names; a
    parameter of text cast in the statement would be read again for every row."""

    impl = ARRAY(BigInteger)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], str | None]:
        # Instead of the array type's own processing, which would take the text apart.
        def process(value: Any) -> str | None:
            if value is None:
                return None
            # int() first: only numbers reach the text, whatever a caller passes.
            return "{" + ",".join(map(str, map(int, value))) + "}"

        return process
