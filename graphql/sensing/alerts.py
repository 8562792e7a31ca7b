"""Alerts (预警) in the API: the live feed, the alert node with its timeline, the rules
and the duty roster, and the mutations of the alert loop.

Who sees which alerts is decided once, by `alert_scope`: the village admin all of
them, a grid worker those of their grids and those assigned to them, regional
coordinators and integrators with `alerts:read` all of them, read only. An
integrator without `alerts:read` sees none (FORBIDDEN), even in a village whose
residents it reads. Integrators that reach a village through `alerts:read` alone
use the root field `alerts(village:)`: `village(slug)` is for readers of the
village, and stays NOT_FOUND for them.

After a mutation commits, the notify job is enqueued (jobs/alerts.py): the
integrators subscribed to the alert's events hear of it in seconds.
"""

from __future__ import annotations

from functools import partial

from ariadne import MutationType, ObjectType, QueryType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden, NotFound
from villagelink.graphql.core.ids import decode_id, filter_key, input_key, target_id
from villagelink.graphql.core.nodes import (
    announce_page,
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.payloads import act_on, node_payload, object_payload
from villagelink.graphql.core.scalars import moment_argument
from villagelink.graphql.linkage.region import coordinates, require_coordinator
from villagelink.graphql.residents.types import household_loader, resident_loader
from villagelink.graphql.sensing.devices import device_loader
from villagelink.graphql.villages.types import grid_loader, grid_staff_loader
from villagelink.jobs.alerts import enqueue_alert_notifications
from villagelink.platform.identity.principal import INTEGRATOR
from villagelink.platform.webhooks import ALERT_ACKNOWLEDGED, ALERT_ASSIGNED, ALERT_RESOLVED
from villagelink.tenants import clock
from villagelink.tenants.sensing import actions, queries
from villagelink.tenants.sensing.actions import DUTY_SHIFT
from villagelink.tenants.sensing.alerting import ALERT
from villagelink.tenants.sensing.queries import AlertFilter, AlertScope, ShiftFilter
from villagelink.tenants.sensing.tables import UNACKNOWLEDGED_STATES

query = QueryType()
mutation = MutationType()
village_type = ObjectType("Village")
alert_type = node_object(ALERT)
shift_type = node_object(DUTY_SHIFT)
event_type = ObjectType("AlertEvent")


# -- reach --------------------------------------------------------------------


def _staff_id(ctx: RequestContext, slug: str) -> int | None:
    """The caller's own grid staff record in the village, looked up once per request."""
    loader = ctx.loader(
        slug,
        "alert_staff_of_account",
        lambda conn, subs: {sub: queries.staff_of_account(conn, sub) for sub in subs},
    )
    return loader.load(ctx.principal.sub)


def alert_scope(ctx: RequestContext, slug: str) -> AlertScope:
    """What of the village's alerts the caller sees (NOT_FOUND outside their reach)."""
    ctx.village(slug, also=ctx.access.alert_readers)
    if slug in ctx.access.alert_readers:
        return queries.WHOLE_VILLAGE
    if ctx.principal.has(INTEGRATOR) and not ctx.access.can_write(slug):
        raise Forbidden("reading alerts takes the alerts:read scope in this village")
    grids = ctx.allowed_grids(slug)
    if grids is None:
        return queries.WHOLE_VILLAGE
    return AlertScope(grids=grids, staff_id=_staff_id(ctx, slug))


def acting_scope(ctx: RequestContext, slug: str) -> AlertScope:
    """Which of the village's alerts the caller acts on: its staff theirs (as they see
    them), the coordinators of its region those risen to the region, nobody else's."""
    if not ctx.access.can_write(slug) and coordinates(ctx, slug):
        return queries.RISEN_TO_REGION
    ctx.require_write(slug)
    return alert_scope(ctx, slug)


# Why a grid worker is refused the roster, the rules and reassigning.
ADMINS_ONLY = "only the village's admin may change this"


# -- loaders ------------------------------------------------------------------


def alert_loader(ctx: RequestContext, slug: str):
    scope = alert_scope(ctx, slug)
    return ctx.loader(
        slug,
        ALERT,
        lambda conn, ids: {
            k: as_node(ALERT, slug, v) for k, v in queries.alerts_by_ids(conn, ids, scope).items()
        },
    )


def _timeline_loader(ctx: RequestContext, slug: str):
    def fetch(conn, ids: list[int]) -> dict[int, list[dict]]:
        found = queries.timelines(conn, ids)
        # Who took each step: at most one more query for the page, if any is new.
        grid_staff_loader(ctx, slug).expect(e["staff_id"] for es in found.values() for e in es)
        return found

    return ctx.loader(slug, "alert_timeline", fetch)


def _shift_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        DUTY_SHIFT,
        lambda conn, ids: {
            k: as_node(DUTY_SHIFT, slug, v) for k, v in queries.shifts_by_ids(conn, ids).items()
        },
    )


def _reads_residents(ctx: RequestContext, slug: str) -> bool:
    return ctx.access.can_read(slug)


def _announce_alerts(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """Tell the loaders what this page's rows will ask for: one query each, not one per row."""
    grid_loader(ctx, slug).expect(r["grid_id"] for r in rows)
    grid_staff_loader(ctx, slug).expect(r["assignee_staff_id"] for r in rows)
    device_loader(ctx, slug).expect(r["device_id"] for r in rows)
    if _reads_residents(ctx, slug):
        resident_loader(ctx, slug).expect(r["resident_id"] for r in rows)
        household_loader(ctx, slug).expect(r["household_id"] for r in rows)
    _timeline_loader(ctx, slug).expect(r["id"] for r in rows)
    # Fields other packages add to Alert (neighbour reports) batch on the page too.
    announce_page(ctx, ALERT, slug, [r["id"] for r in rows])


# -- the feed -------------------------------------------------------------------


def _feed(ctx: RequestContext, slug: str, first, after, state, kind, grid, level):
    page = page_args(first, after, ctx.settings.max_page_size)
    scope = alert_scope(ctx, slug)
    flt = AlertFilter(
        states=tuple(state or ()),
        kinds=tuple(kind or ()),
        grid_id=filter_key(grid, "Grid", slug),
        level=level,
    )
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.alert_page(conn, flt, scope, after_id=page.after_id, limit=limit)
        _announce_alerts(ctx, slug, rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.alert_count(conn, flt, scope),
        node=lambda row: as_node(ALERT, slug, row),
    )


@village_type.field("alerts")
def resolve_village_alerts(
    village: dict, info, first=None, after=None, state=None, kind=None, grid=None, level=None
):
    return _feed(info.context, village["slug"], first, after, state, kind, grid, level)


@query.field("alerts")
def resolve_alerts(
    _obj, info, village: str, first=None, after=None, state=None, kind=None, grid=None, level=None
):
    return _feed(info.context, village, first, after, state, kind, grid, level)


@village_type.field("alertRules")
def resolve_alert_rules(village: dict, info) -> list[dict]:
    return queries.rules(info.context.tenant(village["slug"]))


@village_type.field("dutyShifts")
def resolve_duty_shifts(village: dict, info, first=None, after=None, staff=None, **window):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    starts = moment_argument(window.get("from"), "from")
    flt = ShiftFilter(
        starts=clock.now() if starts is None and window.get("to") is None else starts,
        ends=moment_argument(window.get("to"), "to"),
        staff_id=filter_key(staff, "GridStaff", slug),
    )
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.shift_page(conn, flt, after_id=page.after_id, limit=limit)
        grid_staff_loader(ctx, slug).expect(r["staff_id"] for r in rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.shift_count(conn, flt),
        node=lambda row: as_node(DUTY_SHIFT, slug, row),
    )


# -- alert fields -------------------------------------------------------------------


@alert_type.field("grid")
def resolve_grid(alert: dict, info) -> dict | None:
    return grid_loader(info.context, alert["village"]).load(alert["grid_id"])


@alert_type.field("assignee")
def resolve_assignee(alert: dict, info) -> dict | None:
    return grid_staff_loader(info.context, alert["village"]).load(alert["assignee_staff_id"])


@alert_type.field("device")
def resolve_device(alert: dict, info) -> dict | None:
    """The device as its own rules show it (graphql/sensing/devices.py): null for a
    caller who may not see it, such as an integrator reading alerts without running
    devices in the village."""
    try:
        return device_loader(info.context, alert["village"]).load(alert["device_id"])
    except (NotFound, Forbidden):
        return None


@alert_type.field("resident")
def resolve_resident(alert: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    if not _reads_residents(ctx, alert["village"]):
        return None
    return resident_loader(ctx, alert["village"]).load(alert["resident_id"])


@alert_type.field("household")
def resolve_household(alert: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    if not _reads_residents(ctx, alert["village"]):
        return None
    return household_loader(ctx, alert["village"]).load(alert["household_id"])


@alert_type.field("overdue")
def resolve_overdue(alert: dict, _info) -> bool:
    return alert["state"] in UNACKNOWLEDGED_STATES and alert["ack_due_at"] < clock.now()


@alert_type.field("timeline")
def resolve_timeline(alert: dict, info) -> list[dict]:
    events = _timeline_loader(info.context, alert["village"]).load(alert["id"]) or []
    return [{**e, "village": alert["village"]} for e in events]


@event_type.field("staff")
def resolve_event_staff(event: dict, info) -> dict | None:
    return grid_staff_loader(info.context, event["village"]).load(event["staff_id"])


event_type.set_field("actor", lambda event, *_: event["actor_name"])
event_type.set_field("at", lambda event, *_: event["created_at"])


@shift_type.field("staff")
def resolve_shift_staff(shift: dict, info) -> dict | None:
    return grid_staff_loader(info.context, shift["village"]).load(shift["staff_id"])


@shift_type.field("onDuty")
def resolve_on_duty(shift: dict, _info) -> bool:
    return shift["starts_at"] <= clock.now() < shift["ends_at"]


# -- mutations -----------------------------------------------------------------------


def _notify_after_commit(ctx: RequestContext, village: str, alert_id: int, event: str) -> None:
    ctx.after_commit(lambda: enqueue_alert_notifications(ctx.settings, village, [alert_id], event))


def _alert_step(info, input: dict, action, fields: tuple[str, ...], event: str, **keys) -> dict:
    """Run `action` on the alert `input["id"]` names, with the input's `fields` as its
    data, and tell its subscribers once the change has committed."""
    ctx: RequestContext = info.context
    gid = target_id(input["id"], ALERT, lambda v: acting_scope(ctx, v))
    village, alert_id = gid.village, int(gid.key)
    data = {k: input[k] for k in fields if input.get(k) is not None}

    def run() -> dict:
        changed = action(
            ctx.tenant(village),
            ctx.actor,
            village,
            alert_id,
            data,
            **{name: resolve(village) for name, resolve in keys.items()},
        )
        _notify_after_commit(ctx, village, alert_id, event)
        return changed

    return node_payload("alert", ALERT, village, run)


def _scoped_to(ctx: RequestContext):
    return lambda village: acting_scope(ctx, village)


@mutation.field("acknowledgeAlert")
def resolve_acknowledge_alert(_obj, info, input: dict) -> dict:
    return _alert_step(
        info,
        input,
        actions.do_acknowledge_alert,
        ("note",),
        ALERT_ACKNOWLEDGED,
        scope=_scoped_to(info.context),
    )


@mutation.field("resolveAlert")
def resolve_resolve_alert(_obj, info, input: dict) -> dict:
    return _alert_step(
        info,
        input,
        actions.do_resolve_alert,
        ("outcome",),
        ALERT_RESOLVED,
        scope=_scoped_to(info.context),
    )


@mutation.field("markAlertFalseAlarm")
def resolve_mark_alert_false_alarm(_obj, info, input: dict) -> dict:
    return _alert_step(
        info,
        input,
        actions.do_mark_false_alarm,
        ("note",),
        ALERT_RESOLVED,
        scope=_scoped_to(info.context),
    )


@mutation.field("reassignAlert")
def resolve_reassign_alert(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    ctx.require_manage(decode_id(input["id"], ALERT).village, ADMINS_ONLY)
    return _alert_step(
        info,
        input,
        actions.do_reassign_alert,
        ("note",),
        ALERT_ASSIGNED,
        assignee_id=lambda v: input_key(v, input.get("assignee"), "GridStaff", "assignee"),
    )


@mutation.field("dispatchAlert")
def resolve_dispatch_alert(_obj, info, input: dict) -> dict:
    require_coordinator(info.context, decode_id(input["id"], ALERT).village)
    return _alert_step(
        info,
        input,
        actions.do_dispatch_alert,
        ("note",),
        ALERT_ASSIGNED,
        scope=_scoped_to(info.context),
    )


@mutation.field("updateAlertRule")
def resolve_update_alert_rule(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, ADMINS_ONLY)
    data = {
        k: input[k]
        for k in ("enabled", "severity", "ack_minutes", "debounce_minutes")
        if input.get(k) is not None
    }
    return object_payload(
        "rule",
        lambda: actions.do_update_alert_rule(
            ctx.tenant(village), ctx.actor, village, input["kind"], data
        ),
    )


_shift_payload = partial(node_payload, "duty_shift", DUTY_SHIFT)


@mutation.field("scheduleDutyShift")
def resolve_schedule_duty_shift(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, ADMINS_ONLY)
    data = {k: input[k] for k in ("starts_at", "ends_at")}
    return _shift_payload(
        village,
        lambda: actions.do_schedule_duty_shift(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            staff_id=input_key(village, input["staff"], "GridStaff", "staff"),
        ),
    )


@mutation.field("cancelDutyShift")
def resolve_cancel_duty_shift(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(
        input["id"], DUTY_SHIFT, lambda village: ctx.require_manage(village, ADMINS_ONLY)
    )
    data = {"note": input["note"]} if input.get("note") is not None else {}
    return _shift_payload(
        gid.village,
        act_on(ctx, gid, actions.do_cancel_duty_shift, data),
    )


register_node_type(ALERT, fetch_by_int_key(alert_loader))
register_node_type(DUTY_SHIFT, fetch_by_int_key(_shift_loader))

bindables = [
    query,
    mutation,
    village_type,
    alert_type,
    shift_type,
    event_type,
    connection_object("AlertConnection"),
    connection_object("DutyShiftConnection"),
]
