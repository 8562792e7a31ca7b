"""Notice mutations: check reach and role, call the action, shape the payload.

Who may do what: the village's admins and platform admins manage notices
(create, edit, publish, withdraw, return to draft, delete); grid workers read
them but get FORBIDDEN here, as do other read-only roles. `markNoticeRead` is
for residents' apps only: integrators whose client has `notices:read`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import decode_id, int_key
from villagelink.graphql.core.payloads import node_payload, payload
from villagelink.graphql.notices.types import notice_loader
from villagelink.graphql.storage.mutations import schedule_object_removal
from villagelink.graphql.storage.types import seen_with_record
from villagelink.tenants.attachments.declarations import declare_attachments
from villagelink.tenants.notices import actions, queries
from villagelink.tenants.notices.queries import NOTICE, NOTICE_ATTACHMENT

mutation = MutationType()

NOTICE_FIELDS = ("category", "title", "body", "publish_from", "publish_until")


_payload = partial(node_payload, "notice", NOTICE)

# Notices speak for the village: whoever manages it (its admins, platform admins).
MANAGED = "only the village's admins may manage notices"


def _target(ctx: RequestContext, raw: str) -> tuple[str, int]:
    """The village and key of the notice a mutation changes, once the caller may manage it."""
    gid = decode_id(raw, NOTICE)
    ctx.require_manage(gid.village, MANAGED)
    return gid.village, int_key(gid)


def _fields(input: dict) -> dict:
    return {k: input[k] for k in NOTICE_FIELDS if k in input}


@mutation.field("createNotice")
def resolve_create_notice(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {k: v for k, v in _fields(input).items() if v is not None}
    return _payload(
        village, lambda: actions.do_create_notice(ctx.tenant(village), ctx.actor, village, data)
    )


@mutation.field("updateNotice")
def resolve_update_notice(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, notice_id = _target(ctx, input["id"])
    changes = _fields(input)
    return _payload(
        village,
        lambda: actions.do_update_notice(
            ctx.tenant(village), ctx.actor, village, notice_id, changes
        ),
    )


def _step(action: Callable, *names: str) -> Callable:
    """publish / withdraw / return to draft: the notice's ID, and the step's own input."""

    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        village, notice_id = _target(ctx, input["id"])
        extra = [{k: input[k] for k in names}] if names else []
        return _payload(
            village,
            lambda: action(ctx.tenant(village), ctx.actor, village, notice_id, *extra),
        )

    return resolve


mutation.set_field("publishNotice", _step(actions.do_publish_notice))
mutation.set_field("withdrawNotice", _step(actions.do_withdraw_notice, "reason"))
mutation.set_field("returnNoticeToDraft", _step(actions.do_return_notice_to_draft))


@mutation.field("deleteNotice")
def resolve_delete_notice(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, notice_id = _target(ctx, input["id"])

    def run() -> dict:
        removed = actions.do_delete_notice(ctx.tenant(village), ctx.actor, village, notice_id)
        schedule_object_removal(ctx, village, removed)
        return {"deleted_id": input["id"]}

    return payload(run, "deleted_id")


@mutation.field("markNoticeRead")
def resolve_mark_notice_read(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = decode_id(input["notice"], NOTICE)
    ctx.village(gid.village)
    if gid.village not in ctx.access.notice_readers:
        raise Forbidden("only residents' apps (clients with notices:read) report reads")
    notice_id = int_key(gid)
    return _payload(
        gid.village,
        lambda: actions.do_mark_notice_read(
            ctx.tenant(gid.village), ctx.actor, gid.village, notice_id, {"reader": input["reader"]}
        ),
    )


# A notice's PDFs (通知附件): seen by whoever sees the notice (`notice_scope`), changed
# by those who manage notices, and only while it is a draft (`takes_attachments`).
declare_attachments(
    NOTICE,
    [NOTICE_ATTACHMENT],
    queries.takes_attachments,
    visible=seen_with_record(notice_loader),
    writable=lambda ctx, village, _notice: ctx.access.can_manage(village),
)

bindables = [mutation]
