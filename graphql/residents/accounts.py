"""Residents as users: their accounts (bind, request, approve, reject, unbind) and
`me { resident }`, the one entry point of the residents' app.

A resident (role `resident`, in the village's group) acts for themselves only
once the village admin has bound their account to their record. What they may
do reuses the village's own queries and mutations, scoped to them
(`RequestContext.resident_of`): notices residents see now, the requests they
reported, their household's activity sign-ups. Everything else answers
FORBIDDEN (`RequestContext.village`).
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType, ObjectType

from villagelink.graphql.activities.check_in_codes import resolve_team_occurrences_today
from villagelink.graphql.activities.types import resolve_activities
from villagelink.graphql.activities.volunteers import (
    resolve_points_balance,
    resolve_points_ledger,
    resolve_resident_volunteer_hours,
)
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import encode_id, target_id
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.payloads import act_on, node_payload, payload
from villagelink.graphql.health.types import resolve_health_readings, resolve_latest_vitals
from villagelink.graphql.notices.types import resolve_notices
from villagelink.graphql.requests.types import resolve_request_categories, resolve_requests
from villagelink.graphql.residents.types import resident_loader
from villagelink.graphql.service_orders.types import (
    order_connection,
    resolve_service_slots,
)
from villagelink.tenants.activities.queries import teams_led_by
from villagelink.tenants.resident_accounts import actions
from villagelink.tenants.resident_accounts import queries as accounts
from villagelink.tenants.resident_accounts.tables import RESIDENT_ACCOUNT
from villagelink.tenants.residents import queries
from villagelink.tenants.service_orders.queries import OrderFilter

village_type = ObjectType("Village")
me_type = ObjectType("Me")
account_type = node_object(RESIDENT_ACCOUNT)
self_type = ObjectType("ResidentSelf")
member_type = ObjectType("HouseholdMember")
mutation = MutationType()

# What the requester hears, matched or not (see RequestResidentAccountPayload).
REQUEST_RECEIVED = "申请已提交，村务管理员核实身份后会为您开通；如有疑问请到村委会办理"


def _require_admin(ctx: RequestContext, village: str) -> None:
    """Binding an account vouches for who a person is: the village's admins do it."""
    ctx.require_manage(village, "只有村务管理员可以办理居民账号")


def _account_loader(ctx: RequestContext, slug: str):
    _require_admin(ctx, slug)
    return ctx.loader(
        slug,
        RESIDENT_ACCOUNT,
        lambda conn, ids: {
            k: as_node(RESIDENT_ACCOUNT, slug, v)
            for k, v in accounts.accounts_by_ids(conn, ids).items()
        },
    )


@village_type.field("residentAccounts")
def resolve_resident_accounts(village: dict, info, first=None, after=None, state=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    _require_admin(ctx, slug)
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = accounts.account_page(conn, state, after_id=page.after_id, limit=limit)
        resident_loader(ctx, slug).expect(r["resident_id"] for r in rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: accounts.account_count(conn, state),
        node=lambda row: as_node(RESIDENT_ACCOUNT, slug, row),
    )


account_type.set_field("account", lambda row, *_: row["account_sub"])


@account_type.field("resident")
def resolve_account_resident(row: dict, info) -> dict | None:
    return resident_loader(info.context, row["village"]).load(row["resident_id"])


# -- me { resident } ---------------------------------------------------------------


def _own(ctx: RequestContext) -> tuple[str, dict] | None:
    """The first village (by slug) where the caller's account is bound, and the record."""
    for slug in sorted(ctx.access.residents):
        found = ctx.resident_of(slug)
        if found is not None:
            return slug, found
    return None


@me_type.field("resident")
def resolve_me_resident(_me: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    own = _own(ctx)
    if own is None:
        return None
    slug, record = own
    return {**record, "village": slug}


@me_type.field("residentVillages")
def resolve_me_resident_villages(_me: dict, info) -> list[dict]:
    ctx: RequestContext = info.context
    residents = ctx.access.residents
    return [
        {"slug": slug, "name": ctx.village(slug, also=residents)["name"]}
        for slug in sorted(residents)
    ]


@me_type.field("residentAccountState")
def resolve_me_account_state(_me: dict, info) -> str | None:
    ctx: RequestContext = info.context
    for slug in sorted(ctx.access.residents):
        found = accounts.latest_account(ctx.tenant(slug), ctx.principal.sub)
        if found is not None:
            return found["state"]
    return None


self_type.set_field("id", lambda me, *_: encode_id("Resident", me["village"], me["id"]))
self_type.set_field(
    "household",
    lambda me, *_: (
        encode_id("Household", me["village"], me["household_id"])
        if me["household_id"] is not None
        else None
    ),
)


@self_type.field("villageName")
def resolve_self_village_name(me: dict, info) -> str:
    ctx: RequestContext = info.context
    return ctx.village(me["village"], also=ctx.access.residents)["name"]


@self_type.field("address")
def resolve_self_address(me: dict, info) -> str | None:
    if me["household_id"] is None:
        return None
    conn = info.context.tenant(me["village"])
    found = queries.households_by_ids(conn, [me["household_id"]], allowed_grids=None)
    return found[me["household_id"]]["address"] if me["household_id"] in found else None


@self_type.field("members")
def resolve_self_members(me: dict, info) -> list[dict]:
    """The household's records, whole: `HouseholdMember`'s sensitive fields are masked by
    the one guard (graphql/core/sensitive.py), as everywhere."""
    if me["household_id"] is None:
        return [me]
    conn = info.context.tenant(me["village"])
    rows = queries.members_by_household(conn, [me["household_id"]]).get(me["household_id"], [])
    return [{**row, "village": me["village"]} for row in rows]


member_type.set_field("id", lambda row, *_: encode_id("Resident", row["village"], row["id"]))


@self_type.field("notices")
def resolve_self_notices(me: dict, info, first=None, after=None, filter=None):
    return resolve_notices({"slug": me["village"]}, info, first, after, filter)


@self_type.field("requests")
def resolve_self_requests(me: dict, info, first=None, after=None):
    return resolve_requests({"slug": me["village"]}, info, first, after, None)


@self_type.field("requestCategories")
def resolve_self_request_categories(me: dict, info) -> list[dict]:
    return resolve_request_categories({"slug": me["village"]}, info)


@self_type.field("activities")
def resolve_self_activities(me: dict, info, first=None, after=None, filter=None):
    """Published ones only: drafts, cancelled and finished activities take no sign-ups."""
    published = {**(filter or {}), "state": "published"}
    return resolve_activities({"slug": me["village"]}, info, first, after, published)


@self_type.field("serviceSlots")
def resolve_self_service_slots(me: dict, info, first=None, after=None, filter=None):
    return resolve_service_slots({"slug": me["village"]}, info, first, after, filter)


@self_type.field("serviceOrders")
def resolve_self_service_orders(me: dict, info, first=None, after=None):
    mine = OrderFilter(resident_id=me["id"])
    return order_connection(info.context, me["village"], first, after, mine)


@self_type.field("teamServiceOrders")
def resolve_self_team_orders(me: dict, info, first=None, after=None, state=None):
    ctx: RequestContext = info.context
    teams = teams_led_by(ctx.tenant(me["village"]), me["id"])
    flt = OrderFilter(state=state, team_ids=teams)
    return order_connection(ctx, me["village"], first, after, flt)


# Their own points and readings, through the Resident type's resolvers: the record at
# hand is theirs (`village`, `id`), and the health ones let a resident read only that.
self_type.set_field("teamOccurrencesToday", resolve_team_occurrences_today)
self_type.set_field("pointsBalance", resolve_points_balance)
self_type.set_field("volunteerHours", resolve_resident_volunteer_hours)
self_type.set_field("pointsLedger", resolve_points_ledger)
self_type.set_field("latestVitals", resolve_latest_vitals)
self_type.set_field("healthReadings", resolve_health_readings)


# -- mutations ---------------------------------------------------------------------


def _payload(village: str, run: Callable[[], dict]) -> dict:
    return node_payload("resident_account", RESIDENT_ACCOUNT, village, run)


@mutation.field("bindResidentAccount")
def resolve_bind(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["resident"], "Resident", lambda v: _require_admin(ctx, v))
    data = {k: input[k] for k in ("account", "username", "verification") if input.get(k)}
    return _payload(
        gid.village,
        act_on(ctx, gid, actions.do_bind_resident_account, data),
    )


@mutation.field("requestResidentAccount")
def resolve_request(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    if village not in ctx.access.residents:
        ctx.village(village)
        raise Forbidden("只有居民账号可以申请实名绑定")
    data = {"id_number": input["id_number"], "phone": input["phone"]}

    def run() -> dict:
        requested = actions.do_request_resident_account(
            ctx.tenant(village), ctx.actor, village, data
        )
        return {"state": requested["state"], "message": REQUEST_RECEIVED}

    return payload(run, "state", "message")


def _decision(action: Callable, *names: str) -> Callable:
    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        gid = target_id(input["id"], RESIDENT_ACCOUNT, lambda v: _require_admin(ctx, v))
        data = {k: input[k] for k in names}
        return _payload(
            gid.village,
            act_on(ctx, gid, action, data),
        )

    return resolve


mutation.set_field(
    "approveResidentAccount", _decision(actions.do_approve_resident_account, "verification")
)
mutation.set_field("rejectResidentAccount", _decision(actions.do_reject_resident_account, "reason"))
mutation.set_field("unbindResidentAccount", _decision(actions.do_unbind_resident_account, "reason"))

register_node_type(RESIDENT_ACCOUNT, fetch_by_int_key(_account_loader))

bindables = [
    village_type,
    me_type,
    account_type,
    self_type,
    member_type,
    mutation,
    connection_object("ResidentAccountConnection"),
]
