"""Upload and attachment mutations: check reach, call the action, enqueue jobs after commit."""

from __future__ import annotations

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden, NotFound
from villagelink.graphql.core.ids import decode_id, key_number, target_id
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.storage.types import ATTACHMENT, attachment_loader
from villagelink.jobs.storage import enqueue_removal, enqueue_thumbnail
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import IMAGE_TYPES
from villagelink.tenants.attachments import actions
from villagelink.tenants.attachments.declarations import AttachmentDeclaration, declaration

mutation = MutationType()


def schedule_object_removal(ctx: RequestContext, village: str, attachment_ids: list[int]) -> None:
    """After the commit, remove the objects of attachments marked for removal (by
    `detachFile`, or by a record's delete mutation through
    `actions.do_remove_record_attachments`)."""
    if attachment_ids:
        ctx.after_commit(lambda: enqueue_removal(ctx.settings, village, attachment_ids))


@mutation.field("createUploadUrl")
def resolve_create_upload_url(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_write(village)
    data = {k: input[k] for k in ("purpose", "filename", "content_type", "size")}

    def run() -> dict:
        created = actions.do_create_upload(
            ctx.tenant(village), ctx.actor, village, object_store(ctx.settings), data
        )
        ticket = created["ticket"]
        return {
            "upload": {
                "key": created["key"],
                "url": ticket.url,
                "method": ticket.method,
                "headers": [{"name": k, "value": v} for k, v in ticket.headers.items()],
                "expires_at": ticket.expires_at,
            }
        }

    return payload(run, "upload")


@mutation.field("attachFile")
def resolve_attach_file(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_write(village)
    record_type = input["record_type"]
    record = _record_key(village, record_type, input["record_id"])
    declared = declaration(record_type)
    if declared is not None and record is not None:
        record = _changeable(ctx, village, declared, record)

    def run() -> dict:
        row = actions.do_attach_file(
            ctx.tenant(village),
            ctx.actor,
            village,
            object_store(ctx.settings),
            input["key"],
            record_type,
            record,
        )
        if row["content_type"] in IMAGE_TYPES:
            ctx.after_commit(lambda: enqueue_thumbnail(ctx.settings, village, row["id"]))
        return {"attachment": as_node(ATTACHMENT, village, row)}

    return payload(run, "attachment")


def _record_key(village: str, record_type: str, raw: str) -> str | None:
    """The key of the record's global ID if it names a `record_type` of this village
    in its canonical spelling; None otherwise, which the action reports as a record
    not found."""
    try:
        gid = decode_id(raw, record_type)
    except NotFound:
        return None
    return gid.key if gid.village == village and key_number(gid.key) is not None else None


def _changeable(
    ctx: RequestContext, village: str, declared: AttachmentDeclaration, record: str
) -> str | None:
    """`record` if the caller sees it, as its type declared; None (a record not
    found, as the action says) otherwise. FORBIDDEN if its files are not theirs to change."""
    if record not in declared.visible(ctx, village, [record]):
        return None
    _require_writable(ctx, village, declared, record)
    return record


def _require_writable(
    ctx: RequestContext, village: str, declared: AttachmentDeclaration, record: str
) -> None:
    if not declared.writable(ctx, village, record):
        raise Forbidden("your role may not change the files of this record")


@mutation.field("detachFile")
def resolve_detach_file(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["id"], ATTACHMENT, ctx.require_write)
    village = gid.village
    # Only a file the caller sees (else: not found, like one that does not exist).
    found = attachment_loader(ctx, village).load(int(gid.key))
    if found is not None:
        _require_writable(ctx, village, declaration(found["record_type"]), found["record_id"])

    def run() -> dict:
        row = actions.do_detach_file(
            ctx.tenant(village), ctx.actor, village, found["id"] if found else None
        )
        schedule_object_removal(ctx, village, [row["id"]])
        return {"detached_id": input["id"]}

    return payload(run, "detached_id")


bindables = [mutation]
