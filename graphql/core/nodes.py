"""Node objects: a row of a village plus the village it came from and its type name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ariadne import InterfaceType, ObjectType

from villagelink.graphql.core.executor import row_field
from villagelink.graphql.core.ids import encode_id, key_number

node_interface = InterfaceType("Node")

# type name -> (village, key) -> node dict or None; registered by the domain packages.
NodeFetcher = Callable[[Any, str, str], dict | None]
_fetchers: dict[str, NodeFetcher] = {}


def as_node(type_name: str, village: str, row: dict | None) -> dict | None:
    if row is None:
        return None
    return {**row, "_type": type_name, "village": village}


def register_node_type(type_name: str, fetch: NodeFetcher) -> None:
    _fetchers[type_name] = fetch


def fetch_by_int_key(loader_for: Callable[[Any, str], Any]) -> NodeFetcher:
    """A node fetcher for types keyed by integer id and served by a batch loader."""

    def fetch(ctx: Any, village: str, key: str) -> dict | None:
        number = key_number(key)
        return None if number is None else loader_for(ctx, village).load(number)

    return fetch


def fetch_node(context: Any, type_name: str, village: str, key: str) -> dict | None:
    fetch = _fetchers.get(type_name)
    return fetch(context, village, key) if fetch else None


# type name -> who wants to hear of each page of that type: a domain that adds
# fields to a type (`extend type`) announces its loaders' keys for the whole page,
# so its fields cost one query per page rather than one per row.
PageListener = Callable[[Any, str, list[int]], None]
_page_listeners: dict[str, list[PageListener]] = {}


def on_page(type_name: str, listener: PageListener) -> None:
    _page_listeners.setdefault(type_name, []).append(listener)


def announce_page(context: Any, type_name: str, village: str, keys: list[int]) -> None:
    """Called by a list resolver with the keys of the `type_name` rows it is about to show."""
    for listener in _page_listeners.get(type_name, ()):
        listener(context, village, keys)


@node_interface.type_resolver
def _resolve_node_type(obj: dict, *_args) -> str:
    return obj["_type"]


def node_object(type_name: str) -> ObjectType:
    """An ObjectType whose `id` is the opaque global ID of its row."""
    bindable = ObjectType(type_name)
    bindable.set_field("id", row_field(lambda obj: encode_id(type_name, obj["village"], obj["id"])))
    return bindable


def connection_object(type_name: str) -> ObjectType:
    bindable = ObjectType(type_name)
    bindable.set_field("edges", row_field(lambda conn: conn.edges))
    bindable.set_field("pageInfo", row_field(lambda conn: conn.page_info))
    bindable.set_field("totalCount", lambda conn, *_: conn.total_count)
    return bindable
