"""Request, category, deadline and action-list mutations: resolve IDs and reach, call
the action, shape the payload.

Every writer of a village works its requests (a grid worker those of their
grids); categories, deadlines and action lists are the village admin's.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import decode_id, input_key, target_id
from villagelink.graphql.core.payloads import act_on, node_payload, object_payload
from villagelink.graphql.linkage.region import coordinates, require_coordinator
from villagelink.graphql.requests.types import request_scope
from villagelink.graphql.residents.acting import staff_or_resident_target
from villagelink.tenants.requests import actions
from villagelink.tenants.requests.actions import ACTION_LIST, REQUEST_CATEGORY
from villagelink.tenants.requests.queries import REQUEST, WHOLE_VILLAGE
from villagelink.tenants.requests.tables import MINI_PROGRAM
from villagelink.tenants.user_errors import INVALID, ActionFailed, UserError

mutation = MutationType()


def _may_take(ctx: RequestContext, village: str) -> None:
    """Taking a request (受理, 派发, 办结, 结案): the village's staff, or the coordinators of its
    region, who reach the requests escalated to the region only (`request_scope`)."""
    if ctx.access.can_write(village) or not coordinates(ctx, village):
        ctx.require_write(village)


# Why a grid worker is refused what only the village's admin does.
ADMINS_ONLY = "only the village's admin may change this"


# -- requests -----------------------------------------------------------------


# What a resident's own report (心声) takes from its account, not from the input.
RESIDENT_SET_FIELDS = {
    "household": "household",
    "building": "building",
    "grid": "grid",
    "reporter_resident": "reporterResident",
    "reporter_name": "reporterName",
    "reporter_phone": "reporterPhone",
}


def _check_resident_report(input: dict) -> None:
    """A resident's report is theirs: reported by them, from the residents' app, at
    their household. Naming another place or person is refused."""
    errors = [
        UserError(field, "居民本人上报时由系统按实名信息填写，请勿填写此项", INVALID)
        for key, field in RESIDENT_SET_FIELDS.items()
        if input.get(key) is not None
    ]
    if input["channel"] != MINI_PROGRAM:
        errors.append(UserError("channel", "居民本人上报的来源渠道为小程序", INVALID))
    if errors:
        raise ActionFailed(errors)


@mutation.field("createRequest")
def resolve_create_request(_obj, info, input: dict) -> dict:
    """Staff register requests for anyone; a resident reports their own (心声)."""
    ctx: RequestContext = info.context
    village = input["village"]
    resident = ctx.resident_of(village)
    if resident is None:
        ctx.require_write(village)
    data = {
        k: input.get(k)
        for k in (
            "channel",
            "grade",
            "description",
            "location_text",
            "reporter_name",
            "reporter_phone",
            "note",
        )
        if input.get(k) is not None
    }

    def run() -> dict:
        if resident is not None:
            _check_resident_report(input)
            household_id, reporter_id = resident["household_id"], resident["id"]
        else:
            household_id = input_key(village, input.get("household"), "Household", "household")
            reporter_id = input_key(
                village, input.get("reporter_resident"), "Resident", "reporterResident"
            )
        return actions.do_create_request(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            category_id=input_key(village, input["category"], REQUEST_CATEGORY, "category"),
            household_id=household_id,
            building=input.get("building"),
            grid_id=input_key(village, input.get("grid"), "Grid", "grid"),
            reporter_resident_id=reporter_id,
            # The resident's scope shows only their own requests; their report is
            # placed by their household, which needs no grid restriction.
            scope=WHOLE_VILLAGE if resident is not None else request_scope(ctx, village),
        )

    return node_payload("request", REQUEST, village, run)


def _step(
    info,
    input: dict,
    action: Callable,
    fields: tuple[str, ...],
    *,
    coordinators: bool = False,
    residents: bool = False,
    **keys,
) -> dict:
    """Run a step `action` on the request `input["id"]` names, with the input's `fields`
    as its data; `keys(village)` resolve further IDs inside the payload, so that a bad
    one is a userError. With `coordinators`, the region's coordinators may take it too;
    with `residents`, a bound resident, on the requests they reported (their
    `request_scope`)."""
    ctx: RequestContext = info.context
    if residents:
        gid, _resident = staff_or_resident_target(ctx, input["id"], REQUEST)
    else:
        may_act = (lambda v: _may_take(ctx, v)) if coordinators else ctx.require_write
        gid = target_id(input["id"], REQUEST, may_act)
    village = gid.village
    data = {k: input[k] for k in fields if input.get(k) is not None}

    def run() -> dict:
        return action(
            ctx.tenant(village),
            ctx.actor,
            village,
            int(gid.key),
            data,
            scope=request_scope(ctx, village),
            **{name: resolve(village) for name, resolve in keys.items()},
        )

    return node_payload("request", REQUEST, village, run)


@mutation.field("acceptRequest")
def resolve_accept_request(_obj, info, input: dict) -> dict:
    return _step(
        info,
        input,
        actions.do_accept_request,
        ("grade", "note"),
        coordinators=True,
        category_id=lambda v: input_key(v, input.get("category"), REQUEST_CATEGORY, "category"),
    )


@mutation.field("rejectRequest")
def resolve_reject_request(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_reject_request, ("reason",))


@mutation.field("assignRequest")
def resolve_assign_request(_obj, info, input: dict) -> dict:
    return _step(
        info,
        input,
        actions.do_assign_request,
        ("note",),
        assignee_id=lambda v: input_key(v, input.get("assignee"), "GridStaff", "assignee"),
    )


@mutation.field("startRequest")
def resolve_start_request(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_start_request, ("note",))


@mutation.field("resolveRequest")
def resolve_resolve_request(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_resolve_request, ("resolution",), coordinators=True)


@mutation.field("closeRequest")
def resolve_close_request(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_close_request, ("note",), coordinators=True)


@mutation.field("dispatchRequest")
def resolve_dispatch_request(_obj, info, input: dict) -> dict:
    require_coordinator(info.context, decode_id(input["id"], REQUEST).village)
    return _step(info, input, actions.do_dispatch_request, ("note",), coordinators=True)


@mutation.field("reopenRequest")
def resolve_reopen_request(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_reopen_request, ("reason",))


@mutation.field("rateRequest")
def resolve_rate_request(_obj, info, input: dict) -> dict:
    """群众评单: staff type in a rating given by phone; a resident rates their own request."""
    return _step(info, input, actions.do_rate_request, ("rating", "comment"), residents=True)


# -- categories and deadlines --------------------------------------------------


@mutation.field("createRequestCategory")
def resolve_create_request_category(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, ADMINS_ONLY)
    data = {k: input[k] for k in ("code", "name")}
    return node_payload(
        "category",
        REQUEST_CATEGORY,
        village,
        lambda: actions.do_create_request_category(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            parent_id=input_key(village, input.get("parent"), REQUEST_CATEGORY, "parent"),
        ),
    )


@mutation.field("updateRequestCategory")
def resolve_update_request_category(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(
        input["id"], REQUEST_CATEGORY, lambda village: ctx.require_manage(village, ADMINS_ONLY)
    )
    data = {k: input[k] for k in ("name", "active") if k in input}
    return node_payload(
        "category",
        REQUEST_CATEGORY,
        gid.village,
        act_on(ctx, gid, actions.do_update_request_category, data),
    )


@mutation.field("updateRequestSettings")
def resolve_update_request_settings(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, ADMINS_ONLY)
    data = {k: input[k] for k in ("simple_hours", "complex_hours", "hard_hours")}
    return object_payload(
        "settings",
        lambda: actions.do_update_request_deadlines(ctx.tenant(village), ctx.actor, village, data),
    )


# -- action lists ----------------------------------------------------------------


def _request_keys(village: str, raws: list[str] | None) -> list[int]:
    return [input_key(village, raw, REQUEST, "requests") for raw in raws or ()]


@mutation.field("createActionList")
def resolve_create_action_list(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, ADMINS_ONLY)
    data = {k: input[k] for k in ("title", "description", "owner", "due_date") if k in input}
    return node_payload(
        "action_list",
        ACTION_LIST,
        village,
        lambda: actions.do_create_action_list(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            _request_keys(village, input.get("requests")),
        ),
    )


def _change_list(info, raw_id: str, run: Callable[[str, int], dict]) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(raw_id, ACTION_LIST, lambda village: ctx.require_manage(village, ADMINS_ONLY))
    return node_payload(
        "action_list", ACTION_LIST, gid.village, lambda: run(gid.village, int(gid.key))
    )


@mutation.field("updateActionList")
def resolve_update_action_list(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    changes = {k: input[k] for k in ("title", "description", "owner", "due_date") if k in input}
    return _change_list(
        info,
        input["id"],
        lambda village, key: actions.do_update_action_list(
            ctx.tenant(village), ctx.actor, village, key, changes
        ),
    )


@mutation.field("addRequestsToActionList")
def resolve_add_requests_to_action_list(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    return _change_list(
        info,
        input["action_list"],
        lambda village, key: actions.do_add_requests_to_action_list(
            ctx.tenant(village), ctx.actor, village, key, _request_keys(village, input["requests"])
        ),
    )


@mutation.field("removeRequestFromActionList")
def resolve_remove_request_from_action_list(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    return _change_list(
        info,
        input["action_list"],
        lambda village, key: actions.do_remove_request_from_action_list(
            ctx.tenant(village),
            ctx.actor,
            village,
            key,
            input_key(village, input["request"], REQUEST, "request"),
        ),
    )


@mutation.field("setActionListStatus")
def resolve_set_action_list_status(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    data = {"note": input["note"]} if input.get("note") is not None else {}
    return _change_list(
        info,
        input["id"],
        lambda village, key: actions.do_set_action_list_status(
            ctx.tenant(village), ctx.actor, village, key, input["status"], data
        ),
    )


bindables = [mutation]
