"""The Attachment type: a row of the village's attachments with fresh presigned URLs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import key_number
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    as_node,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import WEBP
from villagelink.tenants.attachments import queries
from villagelink.tenants.attachments.declarations import RecordsVisible, declaration

ATTACHMENT = "Attachment"
# Long enough to open the page that shows the file, short enough that a URL
# copied out of it soon stops working.
READ_URL_LIFETIME = timedelta(minutes=5)

attachment_type = node_object(ATTACHMENT)


def attachment_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    """Attachments by id, only those whose record the caller sees: the IDs are
    sequential, so reaching the village must not be enough to reach a file."""

    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        rows = queries.attachments_by_ids(conn, ids)
        seen = _seen(ctx, slug, rows.values())
        return {k: as_node(ATTACHMENT, slug, row) for k, row in rows.items() if k in seen}

    return ctx.loader(slug, "attachments", fetch)


def _seen(ctx: RequestContext, slug: str, rows: Iterable[dict]) -> set[int]:
    """The ids of those `rows` whose record the caller sees, by the rule each record
    type declared: one question per type, whatever the number of rows."""
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["record_type"], []).append(row)
    seen: set[int] = set()
    for record_type, typed in by_type.items():
        declared = declaration(record_type)
        if declared is None:
            continue
        visible = declared.visible(ctx, slug, sorted({row["record_id"] for row in typed}))
        seen.update(row["id"] for row in typed if row["record_id"] in visible)
    return seen


def seen_with_record(loader_for: Callable[[RequestContext, str], BatchLoader]) -> RecordsVisible:
    """The `visible` rule of a type keyed by integer id: its files are seen by whoever
    sees the record through the type's own node loader, which keeps the domain's
    rules of who sees what (one query for a batch, shared with the record's lookups)."""

    def visible(ctx: RequestContext, slug: str, record_ids: list[str]) -> set[str]:
        keys = {k: n for k in record_ids if (n := key_number(k)) is not None}
        loader = loader_for(ctx, slug)
        loader.expect(keys.values())
        return {k for k, n in keys.items() if loader.load(n) is not None}

    return visible


def record_attachments_loader(ctx: RequestContext, slug: str, record_type: str) -> BatchLoader:
    """Attachments per record id (the key of the record's global ID), for the
    `attachments` field of a type that declares them: one query per page. Not
    filtered by `visible`: the field is reached only through the record, which the
    type's own loaders have already kept to what the caller sees."""
    return ctx.loader(
        slug,
        f"attachments:{record_type}",
        lambda conn, record_ids: {
            k: [as_node(ATTACHMENT, slug, row) for row in rows]
            for k, rows in queries.attachments_of_records(conn, record_type, record_ids).items()
        },
    )


@attachment_type.field("url")
def resolve_url(obj: dict, info) -> str:
    return object_store(info.context.settings).presigned_get(
        obj["village"],
        obj["object_key"],
        READ_URL_LIFETIME,
        content_type=obj["content_type"],
        filename=obj["filename"],
    )


@attachment_type.field("thumbnailUrl")
def resolve_thumbnail_url(obj: dict, info) -> str | None:
    if not obj["thumbnail_key"]:
        return None
    return object_store(info.context.settings).presigned_get(
        obj["village"], obj["thumbnail_key"], READ_URL_LIFETIME, content_type=WEBP
    )


register_node_type(ATTACHMENT, fetch_by_int_key(attachment_loader))

bindables = [attachment_type]
