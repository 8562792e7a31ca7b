"""The neighbour feed (邻村动态) and 走失协查 in the API.

`Village.neighbourFeed` reads the exchange schema's copies meant for the village in
the village's own transaction: its role's row-level security shows only what is
shared with it (or what it published), and the query asks for its audience as well.
Each item carries the owning village's own ID of the record, so that the actions a
village takes on it (booking a resource, signing up for an activity, acknowledging
an alert) take the feed's IDs as they are.

The acknowledgements and sightings of a neighbour's alert are written in the origin
village (`ctx.neighbour`, tenants/sensing/sightings.py) and shown there on
`Alert.neighbourReports`. The reporting village reads back what it sent in the
mutation's payload only: showing its reports on the feed would open a transaction in
every origin village of the page, for rows the origin owns.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ariadne import InterfaceType, MutationType, ObjectType
from sqlalchemy import Connection as SqlConnection
from sqlalchemy import func, select, tuple_

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import BadUserInput, Forbidden
from villagelink.graphql.core.ids import decode_id, encode_id, int_key
from villagelink.graphql.core.nodes import connection_object, on_page
from villagelink.graphql.core.pagination import Connection, Page, page_args
from villagelink.graphql.core.payloads import payload
from villagelink.platform import models as pm
from villagelink.platform.identity.principal import REGIONAL_COORDINATOR
from villagelink.platform.linkage.catalogue import (
    ALERT_BROADCAST,
    OPEN_ACTIVITY,
    RECORD_TYPES,
    SHARED_RESOURCE,
)
from villagelink.platform.linkage.tables import records
from villagelink.tenants.querying import limit_of
from villagelink.tenants.sensing import sightings
from villagelink.tenants.sensing.alerting import ALERT

FEED_TYPES = (ALERT_BROADCAST, SHARED_RESOURCE, OPEN_ACTIVITY)
ITEM_TYPES = {
    ALERT_BROADCAST: "NeighbourAlert",
    SHARED_RESOURCE: "NeighbourResource",
    OPEN_ACTIVITY: "NeighbourActivity",
}
OCCURRENCE = "ActivityOccurrence"
# Payload fields that are instants: ISO strings in the exchange, DateTime in the API.
MOMENTS = frozenset(
    {
        "raised_at",
        "last_triggered_at",
        "acknowledged_at",
        "closed_at",
        "starts_at",
        "ends_at",
        "computed_at",
        "opened_at",
        "updated_at",
        "occurred_at",
        "created_at",
        "due_at",
        "escalated_at",
    }
)

mutation = MutationType()
village_type = ObjectType("Village")
alert_type = ObjectType("Alert")
record_interface = InterfaceType("NeighbourRecord")
report_type = ObjectType("NeighbourAlertReport")


# -- shared with region.py: copies as API objects, pages ordered by time ------------------


def moments(value: Any) -> Any:
    """The payload with its instants as datetimes (nested lists and objects too)."""
    if isinstance(value, dict):
        return {
            k: datetime.fromisoformat(v) if k in MOMENTS and isinstance(v, str) else moments(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [moments(v) for v in value]
    return value


def copy_item(row: dict, origin_name: str | None) -> dict:
    """An exchange copy as the API shows it: its payload's fields, the origin village,
    and the owning domain's global ID of the record."""
    record_type = RECORD_TYPES[row["record_type"]]
    return {
        **moments(row["payload"]),
        "id": encode_id(record_type.outbox_type, row["origin"], row["origin_id"]),
        "origin": {"slug": row["origin"], "name": origin_name or row["origin"]},
        # Whose record it is: the village whose admin alone may see its phones whole.
        "village": row["origin"],
        "record_type": row["record_type"],
        "version": row["version"],
        "committed_at": row["committed_at"],
        "published_at": row["published_at"],
        "_type": ITEM_TYPES.get(row["record_type"]),
    }


def village_names(ctx: RequestContext, slugs: Iterable[str]) -> dict[str, str]:
    """Names of villages the caller may not reach (neighbours): one platform query."""
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    t = pm.tenants
    rows = ctx.platform_rows(select(t.c.slug, t.c.name).where(t.c.slug.in_(wanted)))
    return {row["slug"]: row["name"] for row in rows}


# Copies are ordered newest change first; the cursor is the last row's sort key.
ORDER = (records.c.committed_at, records.c.origin, records.c.record_type, records.c.origin_id)


def encode_copy_cursor(row: dict) -> str:
    parts = (row["committed_at"].isoformat(), row["origin"], row["record_type"], row["origin_id"])
    key = "copy:" + "|".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(key.encode()).decode("ascii")


def decode_copy_cursor(cursor: str) -> tuple:
    try:
        prefix, key = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        moment, origin, record_type, origin_id = key.split("|")
        if prefix != "copy":
            raise ValueError(prefix)
        return datetime.fromisoformat(moment), origin, record_type, int(origin_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUserInput("after is not a cursor from this connection", argument="after") from exc


class CopyConnection(Connection):
    """A Relay connection over exchange copies (keyed by time and origin, not by id)."""

    @property
    def edges(self) -> list[dict]:
        return [{"cursor": encode_copy_cursor(r), "node": self.node(r)} for r in self.rows]

    @property
    def page_info(self) -> dict:
        first, last = (self.rows[0], self.rows[-1]) if self.rows else (None, None)
        return {
            "has_next_page": self.has_next_page,
            "has_previous_page": self.has_previous_page,
            "start_cursor": encode_copy_cursor(first) if first else None,
            "end_cursor": encode_copy_cursor(last) if last else None,
        }


def copy_page(
    ctx: RequestContext,
    conn: SqlConnection,
    query,
    first: int | None,
    after: str | None,
    *,
    columns=ORDER,
) -> CopyConnection:
    """A page of `query` (a select of exchange copies with the columns of `ORDER` named
    alike) newest first, with the origins' names looked up once for the page."""
    page = Page(page_args(first, None, ctx.settings.max_page_size).first, None)
    subquery = query.subquery()
    keys = [subquery.c[c.name] for c in columns]
    paged = select(subquery)
    if after:
        paged = paged.where(tuple_(*keys) < tuple_(*decode_copy_cursor(after)))
    rows = [
        dict(r)
        for r in conn.execute(
            paged.order_by(*[k.desc() for k in keys]).limit(limit_of(page.first + 1))
        ).mappings()
    ]
    names = village_names(ctx, (r["origin"] for r in rows[: page.first]))
    return CopyConnection(
        rows=rows[: page.first],
        has_next_page=len(rows) > page.first,
        has_previous_page=after is not None,
        count=lambda: conn.execute(select(func.count()).select_from(subquery)).scalar_one(),
        node=lambda row: copy_item(row, names.get(row["origin"])),
    )


# -- the feed --------------------------------------------------------------------------------


def _require_feed_reader(ctx: RequestContext, slug: str) -> None:
    """The village's admins and grid workers (who may write there), platform admins, and
    the coordinators of its region; an integrator reading residents is not a reader."""
    village = ctx.village(slug)
    if ctx.access.can_write(slug):
        return
    p = ctx.principal
    if not (p.has(REGIONAL_COORDINATOR) and village["region_id"] in p.regions):
        raise Forbidden("the neighbour feed is for the village's staff and its coordinators")


@village_type.field("neighbourFeed")
def resolve_neighbour_feed(village: dict, info, first=None, after=None, types=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    _require_feed_reader(ctx, slug)
    r = records
    wanted = [t for t in FEED_TYPES if not types or t in types]
    query = select(r).where(r.c.audience == slug, r.c.origin != slug, r.c.record_type.in_(wanted))
    return copy_page(ctx, ctx.tenant(slug), query, first, after)


@record_interface.type_resolver
def _item_type(item: dict, *_args) -> str:
    return item["_type"]


def _occurrences(item: dict, *_args) -> list[dict] | None:
    found = item.get("occurrences")
    if found is None:
        return None
    origin = item["origin"]["slug"]
    return [{**o, "id": encode_id(OCCURRENCE, origin, o["id"])} for o in found]


activity_item = ObjectType("NeighbourActivity")
activity_item.set_field("occurrences", _occurrences)


# -- 走失协查 -----------------------------------------------------------------------------------


def _reports_loader(ctx: RequestContext, slug: str):
    def fetch(conn, alert_ids: list[int]) -> dict[int, list[dict]]:
        found = sightings.reports_by_alert(conn, alert_ids)
        names = village_names(ctx, (r["village"] for rs in found.values() for r in rs))
        return {
            alert_id: [{**r, "village_name": names.get(r["village"])} for r in rs]
            for alert_id, rs in found.items()
        }

    return ctx.loader(slug, "alert_neighbour_reports", fetch)


# Alert pages announce their ids: the reports of a page cost one query, not one per alert.
on_page(ALERT, lambda ctx, slug, ids: _reports_loader(ctx, slug).expect(ids))


@alert_type.field("neighbourReports")
def resolve_neighbour_reports(alert: dict, info) -> list[dict]:
    return _reports_loader(info.context, alert["village"]).load(alert["id"]) or []


report_type.set_field(
    "village", lambda r, *_: {"slug": r["village"], "name": r["village_name"] or r["village"]}
)


def _report(info, input: dict, action, *arguments) -> dict:
    """Run `action` in the alert's village for the caller's village `input.village`,
    under an agreement in force covering alert_broadcast (NOT_FOUND without one)."""
    ctx: RequestContext = info.context
    acting = input["village"]
    gid = decode_id(input["alert"], ALERT)
    alert_id, origin = int_key(gid), gid.village
    conn, agreement_ids = ctx.neighbour(origin, acting, ALERT_BROADCAST)

    def run() -> dict:
        report = action(
            conn, ctx.actor, origin, alert_id, acting, *arguments, agreement_ids=agreement_ids
        )
        name = ctx.villages.get(acting, {}).get("name")
        return {"report": {**report, "village_name": name}}

    return payload(run, "report")


@mutation.field("acknowledgeNeighbourAlert")
def resolve_acknowledge_neighbour_alert(_obj, info, input: dict) -> dict:
    return _report(info, input, sightings.do_acknowledge_neighbour_alert)


@mutation.field("reportNeighbourAlertSighting")
def resolve_report_neighbour_sighting(_obj, info, input: dict) -> dict:
    data = {k: input.get(k) for k in ("seen_at", "place", "latitude", "longitude", "note")}
    return _report(info, input, sightings.do_report_neighbour_sighting, data)


bindables = [
    mutation,
    village_type,
    alert_type,
    record_interface,
    activity_item,
    report_type,
    connection_object("NeighbourRecordConnection"),
]
