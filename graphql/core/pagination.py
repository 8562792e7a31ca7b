"""Relay connections over keyset pagination: rows come ordered by id, cursors carry the last id."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)
from villagelink.graphql.core.errors import BadUserInput
from villagelink.graphql.core.ids import key_number
from villagelink.graphql.core.numbers import within

DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Page:
    first: int
    after_id: int | None


def page_args(first: int | None, after: str | None, max_page_size: int) -> Page:
    if first is None:
        first = min(DEFAULT_PAGE_SIZE, max_page_size)
    within(first, "first", 0, max_page_size)
    return Page(first=first, after_id=decode_cursor(after) if after else None)


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    try:
        prefix, value = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
    except (ValueError, UnicodeDecodeError):
        prefix, value = None, ""
    row_id = key_number(value) if prefix == "id" else None
    if row_id is None:
        raise BadUserInput("after is not a cursor from this connection", argument="after")
    return row_id


def node_asks_for(info: GraphQLResolveInfo, *fields: str) -> bool:
    """Whether the connection being resolved asks for any of `fields` of its nodes
    (`edges { node { ... } }`, fragments included): what a page need not join when no
    one reads it. A field under a directive counts as asked for."""
    wanted = set(fields)

    def asks(selection_set: SelectionSetNode | None, path: tuple[str, ...]) -> bool:
        if selection_set is None:
            return False
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if not path and name in wanted:
                    return True
                if path and name == path[0] and asks(selection.selection_set, path[1:]):
                    return True
            elif isinstance(selection, InlineFragmentNode):
                if asks(selection.selection_set, path):
                    return True
            elif isinstance(selection, FragmentSpreadNode):
                fragment = info.fragments.get(selection.name.value)
                if fragment is not None and asks(fragment.selection_set, path):
                    return True
        return False

    return any(asks(node.selection_set, ("edges", "node")) for node in info.field_nodes)


@dataclass
class Connection:
    """What a connection field resolves to; `total_count` runs only when asked for."""

    rows: Sequence[Any]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], int]
    node: Callable[[Any], Any] = lambda row: row

    @property
    def edges(self) -> list[dict]:
        return [{"cursor": encode_cursor(row["id"]), "node": self.node(row)} for row in self.rows]

    @property
    def page_info(self) -> dict:
        return {
            "has_next_page": self.has_next_page,
            "has_previous_page": self.has_previous_page,
            "start_cursor": encode_cursor(self.rows[0]["id"]) if self.rows else None,
            "end_cursor": encode_cursor(self.rows[-1]["id"]) if self.rows else None,
        }

    @property
    def total_count(self) -> int:
        return self.count()


def paginate(
    fetch: Callable[[int], Sequence[Any]],
    page: Page,
    count: Callable[[], int],
    node: Callable[[Any], Any] = lambda row: row,
) -> Connection:
    """`fetch(limit)` returns rows after `page.after_id` ordered by id; one extra tells
    whether there is a next page without a second query."""
    rows = list(fetch(page.first + 1))
    return Connection(
        rows=rows[: page.first],
        has_next_page=len(rows) > page.first,
        has_previous_page=page.after_id is not None,
        count=count,
        node=node,
    )
