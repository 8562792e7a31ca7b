"""`Village.sync`: the village's sync cursor, for its admins."""

from __future__ import annotations

from ariadne import ObjectType
from sqlalchemy import select

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.platform.linkage.tables import cursors

village_type = ObjectType("Village")
village_sync_type = ObjectType("VillageSync")


@village_type.field("sync")
def resolve_sync(village: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    if not ctx.access.can_manage(village["slug"]):
        raise Forbidden("only the village's admins see its sync")
    rows = ctx.platform_rows(select(cursors).where(cursors.c.village == village["slug"]))
    return dict(rows[0]) if rows else None


village_sync_type.set_field("outboxPosition", lambda row, *_: row["outbox_id"])
village_sync_type.set_field("failing", lambda row, *_: row["last_error"] is not None)
village_sync_type.set_field("waitingSince", lambda row, *_: row["waiting_since"])

bindables = [village_type, village_sync_type]
