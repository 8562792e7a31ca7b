"""The Attachment type: a row of the village's attachments with fresh presigned URLs."""

from __future__ import annotations

from datetime import timedelta

from villagelink.graphql.core.context import RequestContext
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

ATTACHMENT = "Attachment"
# Long enough to open the page that shows the file, short enough that a URL
# copied out of it soon stops working.
READ_URL_LIFETIME = timedelta(minutes=5)

attachment_type = node_object(ATTACHMENT)


def attachment_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        "attachments",
        lambda conn, ids: {
            k: as_node(ATTACHMENT, slug, row)
            for k, row in queries.attachments_by_ids(conn, ids).items()
        },
    )


def record_attachments_loader(ctx: RequestContext, slug: str, record_type: str) -> BatchLoader:
    """Attachments per record id (the key of the record's global ID), for the
    `attachments` field of a type that declares them: one query per page."""
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
