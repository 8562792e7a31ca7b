"""Joint cases (难事部门联动): opened by the origin village's admins, updated by the
origin, the involved villages and the region's coordinators, all in the origin's
schema; listed under Village from the origin's tables and from the copies the
sync published to an involved village.

Who acts where:
- the origin's admins: their own transaction (`ctx.tenant`);
- an involved village's admins: `ctx.neighbour(origin, acting, "joint_case")`, which
  checks they may write in `acting` and that an agreement in force covers joint
  cases; the action then checks `acting` is one of the case's villages;
- a coordinator of the origin's region (`acting` = the region's id): coordinators
  read their region's villages, so `ctx.tenant(origin)` opens; this write is allowed
  here explicitly, for joint cases only.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType, ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import decode_id, int_key, target_id
from villagelink.graphql.core.nodes import fetch_by_int_key, node_object, register_node_type
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.linkage.feed import moments
from villagelink.graphql.requests.types import request_loader
from villagelink.platform.identity.principal import REGIONAL_COORDINATOR
from villagelink.platform.linkage.catalogue import JOINT_CASE
from villagelink.platform.linkage.policy import covering
from villagelink.tenants.joint_cases import actions, queries
from villagelink.tenants.joint_cases.actions import JOINT_CASE_TYPE

mutation = MutationType()
village_type = ObjectType("Village")
case_type = node_object(JOINT_CASE_TYPE)
event_type = ObjectType("JointCaseEvent")


def _own(village: str, case: dict, events: list[dict]) -> dict:
    return {
        **case,
        "_type": JOINT_CASE_TYPE,
        "village": village,
        "timeline": events,
        "shared": False,
    }


def _copy(row: dict) -> dict:
    """A copy in the exchange schema, shaped like the origin's row: the fields the
    agreements allow (the others are null), the ID of the origin's case."""
    payload = moments(row["payload"])
    return {
        **dict.fromkeys(("title", "category", "description", "state", "priority")),
        "opened_at": None,
        "updated_at": None,
        **payload,
        "_type": JOINT_CASE_TYPE,
        "id": row["origin_id"],
        "village": row["origin"],
        "request_id": None,
        "villages": payload.get("villages") or [],
        "timeline": payload.get("timeline") or [],
        "version": row["version"],
        "shared": True,
    }


def _with_timelines(conn, village: str, cases: list[dict]) -> list[dict]:
    events = queries.events_by_case(conn, [c["id"] for c in cases])
    return [_own(village, c, events.get(c["id"], [])) for c in cases]


def case_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        JOINT_CASE_TYPE,
        lambda conn, ids: {
            c["id"]: c
            for c in _with_timelines(conn, slug, list(queries.cases_by_ids(conn, ids).values()))
        },
    )


# -- Village --------------------------------------------------------------------


@village_type.field("jointCases")
def resolve_joint_cases(village: dict, info, state=None) -> list[dict]:
    ctx: RequestContext = info.context
    slug = village["slug"]
    conn = ctx.tenant(slug)
    own = _with_timelines(conn, slug, queries.cases(conn, state=state))
    copies = [_copy(row) for row in queries.shared_copies(conn, slug, state=state)]
    return own + copies  # each most recently changed first (the queries' order)


# -- JointCase --------------------------------------------------------------------


@case_type.field("request")
def resolve_case_request(case: dict, info):
    if case["request_id"] is None:
        return None
    return request_loader(info.context, case["village"]).load(case["request_id"])


# -- mutations --------------------------------------------------------------------


def _payload(village: str, conn, run: Callable[[], dict]) -> dict:
    def with_timeline() -> dict:
        case = run()
        events = queries.events_by_case(conn, [case["id"]]).get(case["id"], [])
        return {"case": _own(village, case, events)}

    return payload(with_timeline, "case")


def _require_admin(ctx: RequestContext, village: str) -> None:
    ctx.require_manage(village, "joint cases are opened and updated by the village's admins")


@mutation.field("openJointCase")
def resolve_open_joint_case(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["request"], "Request", lambda v: _require_admin(ctx, v))
    origin = gid.village
    involved = input["villages"]
    with ctx.runtime.db.platform() as platform:
        covered = covering(platform, JOINT_CASE, origin, involved)
    data = {k: input.get(k) for k in ("villages", "note", "priority")}
    conn = ctx.tenant(origin)
    return _payload(
        origin,
        conn,
        lambda: actions.do_open_joint_case(
            conn, ctx.actor, origin, int(gid.key), data, covered=covered
        ),
    )


def _coordinates(ctx: RequestContext, origin: str, acting: str) -> bool:
    """Whether the caller acts as a coordinator of the origin's region (`acting` is
    the region's id)."""
    principal = ctx.principal
    if not principal.has(REGIONAL_COORDINATOR) or acting not in principal.regions:
        return False
    return ctx.village(origin)["region_id"] == acting


@mutation.field("updateJointCase")
def resolve_update_joint_case(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = decode_id(input["case"], JOINT_CASE_TYPE)
    case_id, origin, acting = int_key(gid), gid.village, input["village"]
    as_coordinator = False
    if acting == origin:
        _require_admin(ctx, origin)
        conn = ctx.tenant(origin)
    elif _coordinates(ctx, origin, acting):
        as_coordinator = True
        conn = ctx.tenant(origin)
    else:
        _require_admin(ctx, acting)
        conn, _agreements = ctx.neighbour(origin, acting, JOINT_CASE)
    data = {k: input.get(k) for k in ("note", "state", "add_villages")}
    covered = {}
    if input.get("add_villages"):
        with ctx.runtime.db.platform() as platform:
            covered = covering(platform, JOINT_CASE, origin, input["add_villages"])
    return _payload(
        origin,
        conn,
        lambda: actions.do_update_joint_case(
            conn,
            ctx.actor,
            origin,
            case_id,
            acting,
            data,
            as_coordinator=as_coordinator,
            covered=covered,
        ),
    )


register_node_type(JOINT_CASE_TYPE, fetch_by_int_key(case_loader))

bindables = [mutation, village_type, case_type, event_type]
