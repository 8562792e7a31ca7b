"""Region queries for coordinators (片区统计): `region(id)` and its fields.

Everything is read from the exchange schema as the region's role (`ctx.region`):
row-level security shows that region's copies only, so a coordinator of another
region reads nothing even with the right id. What the villages publish for the
region (statistics, joint cases, requests escalated to the region) is the copy with
the audience "@region"; shared alerts are whatever the region's villages broadcast
to one another, one per alert. Each of these is one statement whatever the number of
villages; what they show is as fresh as the sync (docs/neighbours.md).
"""

from __future__ import annotations

from datetime import datetime

from ariadne import ObjectType, QueryType
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import distinct_on

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden, NotFound
from villagelink.graphql.core.nodes import connection_object
from villagelink.graphql.linkage.feed import CopyConnection, copy_page
from villagelink.graphql.villages.types import village_node
from villagelink.platform import models as pm
from villagelink.platform.identity.principal import REGIONAL_COORDINATOR
from villagelink.platform.linkage.catalogue import (
    ALERT_BROADCAST,
    ESCALATED_REQUEST,
    JOINT_CASE,
    VILLAGE_STATS,
)
from villagelink.platform.linkage.tables import REGION_AUDIENCE, records
from villagelink.tenants import clock
from villagelink.tenants.requests.tables import OPEN_STATES
from villagelink.tenants.stats import AGE_BANDS

query = QueryType()
region_type = ObjectType("Region")
joint_case_type = ObjectType("RegionJointCase")
escalated_request_type = ObjectType("RegionEscalatedRequest")


def may_read_region(ctx: RequestContext, region_id: str) -> bool:
    return ctx.access.is_platform_admin or (
        ctx.principal.has(REGIONAL_COORDINATOR) and region_id in ctx.principal.regions
    )


def coordinates(ctx: RequestContext, slug: str) -> bool:
    """Whether the caller is a coordinator of the region `slug` lies in: where the domain
    gives them the job (joint cases, alerts and requests risen to the region), they act
    in the village's records though they do not write there otherwise."""
    return ctx.principal.has(REGIONAL_COORDINATOR) and (
        ctx.village(slug)["region_id"] in ctx.principal.regions
    )


def require_coordinator(ctx: RequestContext, slug: str) -> None:
    """Dispatching (派发) is the region's decision: its coordinators' only."""
    if not coordinates(ctx, slug):
        raise Forbidden("only the region's coordinators dispatch what reached the region")


def _region_copies(region: dict, record_type: str, *, for_region: bool = True):
    """The region's copies of `record_type` (those published for the region itself, with
    `for_region`). Row-level security alone decides what the region's role reads; naming
    the region lets the records_region index (region, type, time) serve the page, which
    the policy's OR of village and region rules does not."""
    r = records
    shown = select(r).where(r.c.region_id == region["id"], r.c.record_type == record_type)
    return shown.where(r.c.audience == REGION_AUDIENCE) if for_region else shown


def _region_conn(ctx: RequestContext, region: dict):
    """The region's exchange read, for its coordinators and platform admins. Reached
    through Village.region by anyone else, the region's fields are refused."""
    if not may_read_region(ctx, region["id"]):
        raise Forbidden("only the region's coordinators read across its villages")
    return ctx.region(region["id"])


@query.field("region")
def resolve_region(_obj, info, id: str) -> dict:
    ctx: RequestContext = info.context
    if not may_read_region(ctx, id):
        raise NotFound("region")
    r = pm.regions
    found = ctx.platform_rows(select(r.c.id, r.c.name).where(r.c.id == id))
    if not found:
        raise NotFound("region")
    return dict(found[0])


def _villages(ctx: RequestContext, region_id: str) -> list[dict]:
    return [v for v in ctx.villages.values() if v["region_id"] == region_id]


@region_type.field("villages")
def resolve_villages(region: dict, info) -> list[dict]:
    ctx: RequestContext = info.context
    if not may_read_region(ctx, region["id"]):
        raise Forbidden("only the region's coordinators read across its villages")
    return [village_node(v) for v in _villages(ctx, region["id"])]


# -- statistics --------------------------------------------------------------------------------


def _shown(payload: dict) -> dict:
    """A village's published statistics, or their sum, as the API shows them."""
    bands = payload.get("residents_by_age_band") or {}
    return {
        "residents": payload.get("residents"),
        "households": payload.get("households"),
        "residents_by_age_band": [
            {"band": name, "count": bands.get(name, 0)} for name, _upper in AGE_BANDS
        ],
        "elderly_living_alone": payload.get("elderly_living_alone"),
        "requests_open_by_category": payload.get("requests_open_by_category") or [],
        "requests_overdue_by_category": payload.get("requests_overdue_by_category") or [],
        "alerts_by_kind_per_week": payload.get("alerts_by_kind_per_week") or [],
        "volunteer_hours": payload.get("volunteer_hours"),
        "points_balance": payload.get("points_balance"),
    }


def _summed_list(field: str, keys: tuple[str, ...], named: bool = False) -> str:
    """SQL for a published list of {keys..., count} summed over the copies by its keys, in
    key order; `named`: with the name the first village (by slug) gives the key."""
    columns = [f"item->>'{key}' AS {key}" for key in keys]
    fields = [f"'{key}', {key}" for key in keys]
    if named:
        # The smallest [slug, name] pair is the first village's name, and an aggregate
        # without an ORDER BY of its own leaves PostgreSQL free to hash the groups.
        columns.append("(min(ARRAY[origin, item->>'name']))[2] AS name")
        fields.append("'name', name")
    return f"""(
        SELECT coalesce(jsonb_agg(jsonb_build_object({", ".join(fields)}, 'count', n)
                                  ORDER BY {", ".join(keys)}), '[]')
        FROM (SELECT {", ".join(columns)}, sum((item->>'count')::bigint) AS n
              FROM copies, jsonb_array_elements(payload->'{field}') AS item
              GROUP BY {", ".join(keys)}) AS summed)"""


# The catalogue's `village_stats` fields (tenants/stats.py) that are single numbers.
_SUMMED_NUMBERS = {
    "residents": "bigint",
    "households": "bigint",
    "elderly_living_alone": "bigint",
    "volunteer_hours": "numeric",
    "points_balance": "bigint",
}
# The single numbers and the age bands (whose names are known) in one pass over the copies.
_NUMBER_SUMS = [
    f"'{field}', sum((payload->>'{field}')::{kind})" for field, kind in _SUMMED_NUMBERS.items()
] + [
    "'residents_by_age_band', jsonb_build_object("
    + ", ".join(
        f"'{band}', coalesce(sum((payload->'residents_by_age_band'->>'{band}')::bigint), 0)"
        for band, _upper in AGE_BANDS
    )
    + ")"
]
_LIST_SUMS = [
    f"'{field}', {_summed_list(field, keys, named)}"
    for field, keys, named in (
        ("requests_open_by_category", ("category",), True),
        ("requests_overdue_by_category", ("category",), True),
        ("alerts_by_kind_per_week", ("week", "kind"), False),
    )
]
# One statement, whatever the number of villages: each village's copy, and their sum made
# by PostgreSQL (summed in Python, a thousand copies kept a coordinator waiting half a
# second). A sum over no value is null, as a field no village published is. The region is
# named besides row-level security (which alone guards what the role reads): its OR of
# village and region rules serves no index, `region_id = :region` the records_region one.
_REGION_STATS = text(
    f"""
WITH copies AS (
    SELECT origin, payload FROM records
    WHERE region_id = :region AND record_type = :record_type AND audience = :audience
      AND origin = ANY(:villages)
)
SELECT
    (SELECT coalesce(json_object_agg(origin, payload), '{{}}') FROM copies) AS published,
    (SELECT jsonb_build_object({", ".join(_NUMBER_SUMS)}) FROM copies)
    || jsonb_build_object({", ".join(_LIST_SUMS)}) AS total
"""
)


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@region_type.field("stats")
def resolve_stats(region: dict, info) -> dict:
    return region_stats(info.context, region)


def region_stats(ctx: RequestContext, region: dict) -> dict:
    """What the villages of the region published, each and summed: the overview's
    figures, for the `stats` field and the region's export alike."""
    conn = _region_conn(ctx, region)
    members = _villages(ctx, region["id"])
    published, total = conn.execute(
        _REGION_STATS,
        {
            "region": region["id"],
            "record_type": VILLAGE_STATS,
            "audience": REGION_AUDIENCE,
            "villages": [v["slug"] for v in members],
        },
    ).one()
    villages = []
    for village in members:
        payload = published.get(village["slug"])
        villages.append(
            {
                "village": {"slug": village["slug"], "name": village["name"]},
                # The one instant in the statistics: parsing only it, not walking every
                # payload for instants, is a tenth of a thousand villages' answer.
                "computed_at": None if payload is None else _instant(payload.get("computed_at")),
                "stats": None if payload is None else _shown(payload),
            }
        )
    return {
        "total": _shown(total),
        "villages": villages,
        "missing": [v["village"]["slug"] for v in villages if v["stats"] is None],
    }


# -- shared alerts and joint cases -----------------------------------------------------------


@region_type.field("sharedAlerts")
def resolve_shared_alerts(region: dict, info, first=None, after=None, kind=None, state=None):
    ctx: RequestContext = info.context
    conn = _region_conn(ctx, region)
    r = records
    # Each audience holds its own copy of an alert: the newest version, and of its
    # copies the one with the most fields (agreements allow different ones).
    fields = select(func.count()).select_from(func.jsonb_object_keys(r.c.payload)).scalar_subquery()
    newest = (
        _region_copies(region, ALERT_BROADCAST, for_region=False)
        .ext(distinct_on(r.c.origin, r.c.origin_id))
        .order_by(r.c.origin, r.c.origin_id, r.c.version.desc(), fields.desc())
        .subquery()
    )
    shown = select(newest)
    if kind is not None:
        shown = shown.where(newest.c.payload["kind"].astext == kind)
    if state is not None:
        shown = shown.where(newest.c.payload["state"].astext == state)
    return copy_page(ctx, conn, shown, first, after)


@region_type.field("jointCases")
def resolve_joint_cases(region: dict, info, first=None, after=None, state=None):
    ctx: RequestContext = info.context
    conn = _region_conn(ctx, region)
    shown = _region_copies(region, JOINT_CASE)
    if state is not None:
        shown = shown.where(records.c.payload["state"].astext == state)
    return copy_page(ctx, conn, shown, first, after)


# -- escalated requests ------------------------------------------------------------------------


@region_type.field("escalatedRequests")
def resolve_escalated_requests(
    region: dict, info, first=None, after=None, include_closed=False
) -> CopyConnection:
    ctx: RequestContext = info.context
    conn = _region_conn(ctx, region)
    shown = _region_copies(region, ESCALATED_REQUEST)
    if not include_closed:
        shown = shown.where(records.c.payload["state"].astext.in_(OPEN_STATES))
    return copy_page(ctx, conn, shown, first, after)


@escalated_request_type.field("overdue")
def resolve_escalated_overdue(item: dict, _info) -> bool:
    due_at = item.get("due_at")
    return item.get("state") in OPEN_STATES and due_at is not None and due_at < clock.now()


bindables = [
    query,
    region_type,
    joint_case_type,
    escalated_request_type,
    connection_object("SharedAlertConnection"),
    connection_object("RegionEscalatedRequestConnection"),
    connection_object("RegionJointCaseConnection"),
]
