"""Notices in the API: the village's list, node lookup, read counts and attachments per page.

Who sees which notices is decided once, by `notice_scope`: the village's
writers (admins, grid workers, platform admins) see every notice; the region's
coordinators the published ones; residents' apps (integrators whose client has
`notices:read`) only what residents see now.
"""

from __future__ import annotations

from datetime import datetime

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.storage.types import record_attachments_loader
from villagelink.platform.identity.principal import REGIONAL_COORDINATOR
from villagelink.tenants import clock
from villagelink.tenants.notices import queries
from villagelink.tenants.notices.queries import EVERY_NOTICE, NOTICE, NoticeFilter, NoticeScope

village_type = ObjectType("Village")
notice_type = node_object(NOTICE)


def notice_scope(ctx: RequestContext, slug: str, now: datetime) -> NoticeScope | None:
    """What of the village's notices the caller sees, None for nothing (NOT_FOUND
    outside their reach)."""
    village = ctx.village(slug)
    if ctx.access.can_write(slug):
        return EVERY_NOTICE
    principal = ctx.principal
    if principal.has(REGIONAL_COORDINATOR) and village["region_id"] in principal.regions:
        return NoticeScope(published_only=True)
    if slug in ctx.access.notice_readers:
        return NoticeScope(visible_at=now)
    return None


# -- loaders ------------------------------------------------------------------


def notice_loader(ctx: RequestContext, slug: str):
    now = clock.now()
    scope = notice_scope(ctx, slug, now)

    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        if scope is None:
            return {}
        found = queries.notices_by_ids(conn, ids, scope, now=now)
        _announce_notices(ctx, slug, list(found))
        return {k: as_node(NOTICE, slug, v) for k, v in found.items()}

    return ctx.loader(slug, NOTICE, fetch)


def _reads_loader(ctx: RequestContext, slug: str):
    return ctx.loader(slug, "notice_reads", queries.read_counts)


def _attachments_loader(ctx: RequestContext, slug: str):
    return record_attachments_loader(ctx, slug, NOTICE)


def _announce_notices(ctx: RequestContext, slug: str, ids: list[int]) -> None:
    """Tell the loaders what these notices will ask for: one query each, not one per row."""
    _reads_loader(ctx, slug).expect(ids)
    _attachments_loader(ctx, slug).expect(str(k) for k in ids)


# -- the village's list -------------------------------------------------------


@village_type.field("notices")
def resolve_notices(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    now = clock.now()
    scope = notice_scope(ctx, slug, now)
    if scope is None:
        raise Forbidden("this client may not read notices (it needs the notices:read scope)")
    flt = NoticeFilter(**(filter or {}))
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.notice_page(conn, flt, scope, now=now, after_id=page.after_id, limit=limit)
        _announce_notices(ctx, slug, [r["id"] for r in rows[: page.first]])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.notice_count(conn, flt, scope, now=now),
        node=lambda row: as_node(NOTICE, slug, row),
    )


# -- notice fields ------------------------------------------------------------


def _reads(notice: dict, info) -> dict:
    return _reads_loader(info.context, notice["village"]).load(notice["id"]) or {}


@notice_type.field("readCount")
def resolve_read_count(notice: dict, info) -> int:
    return _reads(notice, info).get("readers", 0)


@notice_type.field("totalReads")
def resolve_total_reads(notice: dict, info) -> int:
    return _reads(notice, info).get("reads", 0)


@notice_type.field("attachments")
def resolve_attachments(notice: dict, info) -> list[dict]:
    return _attachments_loader(info.context, notice["village"]).load(str(notice["id"])) or []


register_node_type(NOTICE, fetch_by_int_key(notice_loader))

bindables = [village_type, notice_type, connection_object("NoticeConnection")]
