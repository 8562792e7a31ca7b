"""The safety alert loop (预警): raising with debouncing, placing and assignment by the
duty roster, every step of the state machine allowed and refused, escalation on a
controlled clock, roles, the notify jobs on the real queue, and statement counts.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import func, insert, select, update

from villagelink.graphql.core.ids import encode_id
from villagelink.jobs import alerts as alert_jobs
from villagelink.jobs.alerts import enqueue_alert_notifications
from villagelink.jobs.queues import MAINTENANCE, NOTIFY, queue
from villagelink.jobs.scheduler import build_cron_scheduler
from villagelink.jobs.worker import VillageWorker
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import Principal
from villagelink.platform.webhooks.tables import webhook_deliveries
from villagelink.tenants import models as tm
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.outbox import outbox
from villagelink.tenants.sensing.actions import (
    ACKNOWLEDGE,
    ALERT_STEPS,
    ALERT_TRANSITIONS,
    MARK_FALSE_ALARM,
    REASSIGN,
    RESOLVE,
    do_resolve_alert,
)
from villagelink.tenants.sensing.alerting import ALERT, Trigger, raise_alerts
from villagelink.tenants.sensing.queries import WHOLE_VILLAGE
from villagelink.tenants.sensing.tables import (
    ACKNOWLEDGED,
    ALERT_KINDS,
    ALERT_STATES,
    ASSIGNED,
    FALSE_ALARM,
    OPEN,
    RESOLVED,
    alert_events,
    alert_rules,
    alerts,
    devices,
    duty_shifts,
)
from villagelink.tenants.user_errors import ActionFailed

from .conftest import TEST_REGION
from .test_query_count import count_statements
from .test_webhooks import receiver  # noqa: F401 (a fixture, used by name)

INGEST = Actor(
    Principal(
        sub="service-account-alert-test",
        username=None,
        roles=frozenset({"integrator"}),
        villages=frozenset(),
        regions=frozenset(),
        client_id="alert-test",
    )
)
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


# -- a village with devices ---------------------------------------------------------------


class Place:
    """A populated village's first micro-grid with its worker, a household there and
    one of its residents, a radar watching over that resident and a camera."""

    def __init__(self, db: Database, slug: str):
        self.db, self.slug = db, slug
        g, a, s, h, r = tm.grids, tm.grid_assignments, tm.grid_staff, tm.households, tm.residents
        with db.tenant(slug) as conn:
            self.grid, self.parent = conn.execute(
                select(g.c.id, g.c.parent_id)
                .where(g.c.level == "micro", g.c.id.in_(select(h.c.grid_id)))
                .order_by(g.c.id)
                .limit(1)
            ).one()
            self.workers = (
                conn.execute(
                    select(s.c.id).join(a, a.c.staff_id == s.c.id).where(a.c.grid_id == self.grid)
                )
                .scalars()
                .all()
            )
            self.household = conn.execute(
                select(h.c.id).where(h.c.grid_id == self.grid).order_by(h.c.id).limit(1)
            ).scalar_one()
            self.resident = conn.execute(
                select(r.c.id).where(r.c.household_id == self.household).limit(1)
            ).scalar_one()
            self.radar = self.device(
                conn, "mmwave_radar", household_id=self.household, resident_id=self.resident
            )
            self.camera = self.device(
                conn,
                "ai_camera",
                grid_id=self.grid,
                location_text="北门停车场",
                latitude=39.1,
                longitude=117.2,
            )

    @staticmethod
    def device(conn, kind: str, **place) -> int:
        return conn.execute(
            insert(devices)
            .values(kind=kind, serial_number=uuid.uuid4().hex, name=f"{kind} 测试", **place)
            .returning(devices.c.id)
        ).scalar_one()

    def fall(self, at: datetime, summary: str = "跌倒报警（毫米波雷达）") -> Trigger:
        return Trigger("fall", f"resident:{self.resident}", at, summary, self.radar, self.resident)

    def fire(self, at: datetime) -> Trigger:
        return Trigger(
            "fire", f"device:{self.camera}", at, "明火报警（AI摄像头 北门停车场）", self.camera
        )

    def raise_(self, triggers: list[Trigger], now: datetime = NOW):
        with self.db.tenant(self.slug) as conn:
            return raise_alerts(conn, INGEST, self.slug, triggers, now)

    def alerts(self) -> list[dict]:
        with self.db.tenant(self.slug) as conn:
            return [dict(r) for r in conn.execute(select(alerts).order_by(alerts.c.id)).mappings()]

    def timeline(self, alert_id: int) -> list[tuple]:
        e = alert_events
        with self.db.tenant(self.slug) as conn:
            rows = conn.execute(
                select(e.c.action, e.c.from_state, e.c.to_state, e.c.level, e.c.staff_id)
                .where(e.c.alert_id == alert_id)
                .order_by(e.c.id)
            )
            return [tuple(row) for row in rows]

    def close(self, alert_id: int, at: datetime) -> None:
        with self.db.tenant(self.slug) as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(state="resolved", closed_at=at, outcome="已处置")
            )


@pytest.fixture
def place(db, populated_village) -> Place:
    return Place(db, populated_village.slug)


# -- raising and debouncing ---------------------------------------------------------------


def test_one_episode_raises_one_alert(place):
    [raised] = place.raise_([place.fall(NOW - 10 * MINUTE + n * MINUTE) for n in range(6)])
    assert (raised.kind, raised.new, raised.triggers) == ("fall", True, 6)
    [alert] = place.alerts()
    assert alert["id"] == raised.id
    assert alert["state"] == "assigned" and alert["level"] == "grid"
    assert alert["occurrences"] == 6
    assert alert["last_triggered_at"] == NOW - 5 * MINUTE
    assert alert["raised_at"] == NOW
    assert alert["ack_due_at"] == NOW + 5 * MINUTE  # a fall: five minutes
    assert alert["severity"] == "critical"
    assert (alert["grid_id"], alert["household_id"], alert["resident_id"], alert["device_id"]) == (
        place.grid,
        place.household,
        place.resident,
        place.radar,
    )
    assert alert["assignee_staff_id"] in place.workers
    assert alert["location_text"]  # the household's address
    assert place.timeline(alert["id"]) == [
        ("raise", None, "open", "grid", None),
        ("assign", "open", "assigned", "grid", alert["assignee_staff_id"]),
    ]

    # Later triggers of the same episode join it: one timeline row per call.
    [joined] = place.raise_([place.fall(NOW + n * MINUTE) for n in range(3)], NOW + 3 * MINUTE)
    assert (joined.id, joined.new, joined.triggers) == (raised.id, False, 3)
    [alert] = place.alerts()
    assert alert["occurrences"] == 9 and alert["last_triggered_at"] == NOW + 2 * MINUTE
    assert alert["ack_due_at"] == NOW + 5 * MINUTE  # the deadline does not move
    assert [row[0] for row in place.timeline(alert["id"])] == ["raise", "assign", "retrigger"]


def test_a_late_report_counts_on_the_closed_episode_and_a_new_episode_raises_anew(place):
    [first] = place.raise_([place.fall(NOW)])
    closed_at = NOW + 20 * MINUTE
    place.close(first.id, closed_at)

    # Occurred before it was closed, within the ten-minute debounce of its last trigger:
    # a buffered report of the same fall.
    [late] = place.raise_([place.fall(NOW + 8 * MINUTE)], NOW + 30 * MINUTE)
    assert (late.id, late.new, late.triggers) == (first.id, False, 1)
    [alert] = place.alerts()
    assert alert["state"] == "resolved" and alert["occurrences"] == 2

    # Before the close but long after the last trigger: another fall, a new alert; and
    # one after the close in the same call joins that new alert.
    (second,) = place.raise_(
        [place.fall(closed_at + MINUTE), place.fall(NOW + 19 * MINUTE)], NOW + 31 * MINUTE
    )
    assert (second.new, second.triggers) == (True, 2)
    assert [a["state"] for a in place.alerts()] == ["resolved", "assigned"]


def test_late_and_new_triggers_of_one_call_split(place):
    [first] = place.raise_([place.fall(NOW)])
    place.close(first.id, NOW + 5 * MINUTE)
    raised = place.raise_([place.fall(NOW + 2 * MINUTE), place.fall(NOW + 6 * MINUTE)])
    assert [(r.id == first.id, r.new, r.triggers) for r in raised] == [
        (True, False, 1),
        (False, True, 1),
    ]


def test_disabled_kinds_raise_nothing(place):
    with place.db.tenant(place.slug) as conn:
        conn.execute(update(alert_rules).where(alert_rules.c.kind == "fall").values(enabled=False))
    assert place.raise_([place.fall(NOW)]) == []
    assert place.raise_([]) == []
    sos = Trigger("sos", f"resident:{place.resident}", NOW, "一键呼救", place.radar, place.resident)
    [raised] = place.raise_([sos])
    assert raised.kind == "sos"
    assert [a["kind"] for a in place.alerts()] == ["sos"]


def test_two_connections_raising_one_episode_make_one_alert(place):
    """The second transaction waits on the first's unique-index entry, then joins it."""
    db, slug = place.db, place.slug
    first = db.begin_tenant(slug)
    results: dict[str, list] = {}
    try:
        results["first"] = raise_alerts(first, INGEST, slug, [place.fall(NOW)], NOW)

        def second() -> None:
            with db.tenant(slug) as conn:
                results["second"] = raise_alerts(
                    conn, INGEST, slug, [place.fall(NOW + MINUTE), place.fall(NOW)], NOW
                )

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=1)
        assert racer.is_alive(), "the second raise should wait for the first transaction"
        first.commit()
        racer.join(timeout=10)
    finally:
        first.close()
    [alert] = place.alerts()
    assert [(r.id, r.new) for r in results["first"]] == [(alert["id"], True)]
    assert [(r.id, r.new, r.triggers) for r in results["second"]] == [(alert["id"], False, 2)]
    assert alert["occurrences"] == 3
    assert [row[0] for row in place.timeline(alert["id"])] == ["raise", "assign", "retrigger"]


def test_fire_and_missing_person_go_to_the_outbox_with_one_audit_statement(place):
    missing = Trigger(
        "missing_person",
        f"resident:{place.resident}",
        NOW,
        "离开安全区域约 850 米",
        place.radar,
        place.resident,
        latitude=39.2,
        longitude=117.3,
    )
    raised = place.raise_([place.fire(NOW), missing, place.fall(NOW)])
    # In (kind, episode) order, the order every call takes the alerts' locks in.
    assert [r.kind for r in raised] == ["fall", "fire", "missing_person"]
    with place.db.tenant(place.slug) as conn:
        shared = conn.execute(
            select(outbox.c.record_id, outbox.c.payload).where(outbox.c.record_type == ALERT)
        ).all()
    payloads = {record_id: payload for record_id, payload in shared}
    assert sorted(payloads) == sorted(r.id for r in raised[1:])
    missing_payload = payloads[raised[2].id]
    assert (missing_payload["latitude"], missing_payload["longitude"]) == (39.2, 117.3)
    assert missing_payload["resident_name"]
    assert "id_number" not in missing_payload and "phone" not in str(missing_payload)
    with place.db.platform() as conn:
        audited = conn.execute(
            select(pm.audit_log.c.action, pm.audit_log.c.subject_id).where(
                pm.audit_log.c.village == place.slug, pm.audit_log.c.subject_type == ALERT
            )
        ).all()
    assert sorted(audited) == sorted(("alert.raise", str(r.id)) for r in raised)


def test_statement_count_does_not_grow_with_the_batch(place):
    """A call costs the same for 3 triggers as for 300, whether they join or raise."""
    with place.db.tenant(place.slug) as conn:
        cameras = [Place.device(conn, "ai_camera", grid_id=place.grid) for _ in range(100)]

    def lingering(among: list[int], n: int) -> list[Trigger]:
        return [
            Trigger(
                "vehicle_lingering",
                f"device:{among[k % len(among)]}",
                NOW,
                "车辆滞留",
                among[k % len(among)],
            )
            for k in range(n)
        ]

    def statements(triggers: list[Trigger]) -> list[str]:
        with place.db.tenant(place.slug) as conn, count_statements(conn.engine) as found:
            raise_alerts(conn, INGEST, place.slug, triggers, NOW)
        return found

    # SET LOCAL ROLE, rules, live joins, last closed alerts, places, assignees, the insert,
    # its timeline, the audit entries, COMMIT
    new_few = statements(lingering(cameras[:3], 3))
    new_many = statements(lingering(cameras[3:50], 300))
    assert len(new_few) == len(new_many) == 10, "\n".join(new_many)
    # SET LOCAL ROLE, rules, live joins, their timeline, the audit entries, COMMIT
    join_few = statements(lingering(cameras[:3], 3))
    join_many = statements(lingering(cameras[:50], 300))
    assert len(join_few) == len(join_many) == 6, "\n".join(join_many)
    # Both at once: the sum, still flat.
    assert len(statements(lingering(cameras[40:60], 300))) == 11


# -- who takes it ---------------------------------------------------------------------------


def shift(db: Database, slug: str, staff_id: int, starts: datetime, ends: datetime) -> None:
    with db.tenant(slug) as conn:
        conn.execute(insert(duty_shifts).values(staff_id=staff_id, starts_at=starts, ends_at=ends))


def new_staff(db: Database, slug: str, grid_id: int, tier: str = "micro_grid_worker") -> int:
    with db.tenant(slug) as conn:
        staff_id = conn.execute(
            insert(tm.grid_staff).values(name="值班员", tier=tier).returning(tm.grid_staff.c.id)
        ).scalar_one()
        conn.execute(insert(tm.grid_assignments).values(staff_id=staff_id, grid_id=grid_id))
    return staff_id


def assignee_of(place: Place, trigger: Trigger, now: datetime = NOW) -> tuple:
    [raised] = place.raise_([trigger], now)
    [alert] = [a for a in place.alerts() if a["id"] == raised.id]
    place.close(alert["id"], now)
    return alert["assignee_staff_id"], alert["state"], alert["level"]


def test_the_on_duty_grid_worker_takes_it_first(place):
    db, slug = place.db, place.slug
    usual = assignee_of(place, place.fall(NOW))[0]
    on_duty = new_staff(db, slug, place.grid, tier="grid_chief")
    shift(db, slug, on_duty, NOW - timedelta(hours=1), NOW + timedelta(hours=7))
    # A shift that ended, or has not begun, does not count.
    off_duty = new_staff(db, slug, place.grid)
    shift(db, slug, off_duty, NOW - timedelta(hours=9), NOW - timedelta(hours=1))
    shift(db, slug, off_duty, NOW + timedelta(hours=7), NOW + timedelta(hours=15))

    later = NOW + timedelta(hours=1)
    assert assignee_of(place, place.fall(later), later) == (on_duty, "assigned", "grid")
    night = NOW + timedelta(hours=8)
    assert assignee_of(place, place.fall(night), night) == (off_duty, "assigned", "grid")
    after = NOW + timedelta(days=1)
    assert assignee_of(place, place.fall(after), after)[0] == usual


def test_without_a_worker_of_the_grid_a_grid_above_then_the_village(place):
    db, slug = place.db, place.slug
    g = tm.grids
    with db.tenant(slug) as conn:
        empty = conn.execute(
            insert(g)
            .values(parent_id=place.parent, level="micro", code="X-01", name="新微网格")
            .returning(g.c.id)
        ).scalar_one()
        orphan = conn.execute(
            insert(g).values(level="community", code="X-00", name="无人网格").returning(g.c.id)
        ).scalar_one()
        upstairs = Place.device(conn, "smoke_sensor", grid_id=empty)
        nowhere = Place.device(conn, "smoke_sensor", grid_id=orphan)
        unplaced = Place.device(conn, "gas_sensor")
        parent_staff = set(
            conn.execute(
                select(tm.grid_assignments.c.staff_id).where(
                    tm.grid_assignments.c.grid_id == place.parent
                )
            ).scalars()
        )

    def smoke(device: int) -> Trigger:
        return Trigger("smoke", f"device:{device}", NOW, "烟雾报警", device)

    staff, state, level = assignee_of(place, smoke(upstairs))
    assert staff in parent_staff and (state, level) == ("assigned", "grid")
    # The parent grid's on-duty worker beats its others.
    on_duty = new_staff(db, slug, place.parent, tier="grid_worker")
    shift(db, slug, on_duty, NOW - MINUTE, NOW + MINUTE)
    assert assignee_of(place, smoke(upstairs))[0] == on_duty

    assert assignee_of(place, smoke(nowhere)) == (None, "open", "village")
    assert assignee_of(place, Trigger("gas", f"device:{unplaced}", NOW, "燃气", unplaced)) == (
        None,
        "open",
        "village",
    )
    [raised] = place.raise_([smoke(nowhere)])
    assert place.timeline(raised.id) == [("raise", None, "open", "village", None)]


def test_unassigned_alerts_are_counted_and_placed_from_the_resident(place):
    """A wristband names no place of its own: its wearer's household places the alert."""
    with place.db.tenant(place.slug) as conn:
        band = Place.device(conn, "wristband", resident_id=place.resident)
    trigger = Trigger(
        "low_spo2",
        f"resident:{place.resident}",
        NOW,
        "血氧 86%",
        band,
        place.resident,
        latitude=39.0,
        longitude=117.0,
    )
    [raised] = place.raise_([trigger])
    [alert] = [a for a in place.alerts() if a["id"] == raised.id]
    assert (alert["grid_id"], alert["household_id"]) == (place.grid, place.household)
    assert (alert["latitude"], alert["longitude"]) == (39.0, 117.0)
    assert alert["ack_due_at"] == NOW + 10 * MINUTE
    with place.db.tenant(place.slug) as conn:
        assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == 1


# == the loop after the raise ====================================================================

ADMIN = Actor(
    Principal(
        "alert-admin", "村务管理员", frozenset({"village-admin"}), frozenset(), frozenset(), None
    )
)

# (state, step) -> the state it leads to; every other pair is refused. Written out, not
# read from actions.py.
ALLOWED_STEPS = {
    (OPEN, ACKNOWLEDGE): ACKNOWLEDGED,
    (OPEN, MARK_FALSE_ALARM): FALSE_ALARM,
    (OPEN, REASSIGN): ASSIGNED,
    (ASSIGNED, ACKNOWLEDGE): ACKNOWLEDGED,
    (ASSIGNED, MARK_FALSE_ALARM): FALSE_ALARM,
    (ASSIGNED, REASSIGN): ASSIGNED,
    (ACKNOWLEDGED, RESOLVE): RESOLVED,
    (ACKNOWLEDGED, MARK_FALSE_ALARM): FALSE_ALARM,
    (ACKNOWLEDGED, REASSIGN): ASSIGNED,
}

# step -> (mutation, input type, what it needs besides the id and, for reassign, the assignee)
STEP_MUTATIONS = {
    ACKNOWLEDGE: ("acknowledgeAlert", "AcknowledgeAlertInput", {"note": "已在赶往现场"}),
    RESOLVE: ("resolveAlert", "ResolveAlertInput", {"outcome": "已送医，家属陪同"}),
    MARK_FALSE_ALARM: (
        "markAlertFalseAlarm",
        "MarkAlertFalseAlarmInput",
        {"note": "摄像头把晾晒的衣物识别为烟雾"},
    ),
    REASSIGN: ("reassignAlert", "ReassignAlertInput", {"note": "就近处置"}),
}

ALERT_FIELDS = """id kind severity state level summary locationText latitude longitude occurrences
  raisedAt lastTriggeredAt ackDueAt overdue notifiedAt acknowledgedAt acknowledgedBy escalatedAt
  closedAt outcome version grid { id name } assignee { id name phone }
  device { id kind } resident { id name idNumber } household { id }
  timeline { action fromState toState level staff { id name } note actor at }"""
FEED = f"""query($slug: String!, $first: Int, $after: String, $state: [AlertState!],
  $kind: [AlertKind!], $grid: ID, $level: EscalationLevel) {{ village(slug: $slug) {{
  alerts(first: $first, after: $after, state: $state, kind: $kind, grid: $grid, level: $level) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {ALERT_FIELDS} }} }} }} }} }}"""
ROOT_FEED = """query($slug: String!) { alerts(village: $slug) { totalCount
  edges { node { id kind state summary resident { id } household { id } device { id }
    assignee { name } timeline { action } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on Alert { id state } } }"


def step_mutation(step: str) -> str:
    name, input_type, _ = STEP_MUTATIONS[step]
    return f"""mutation($input: {input_type}!) {{ {name}(input: $input) {{
      alert {{ {ALERT_FIELDS} }} userErrors {{ field message code }} }} }}"""


def run_step(gql, caller: str, step: str, alert_id: str, **extra) -> dict:
    name, _, needed = STEP_MUTATIONS[step]
    status, body = gql(step_mutation(step), caller, {"input": {"id": alert_id, **needed, **extra}})
    assert status == 200 and "errors" not in body, body
    return body["data"][name]


def errors_of(payload: dict) -> list[tuple]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def gid(slug: str, alert_id: int, type_name: str = "Alert") -> str:
    return encode_id(type_name, slug, alert_id)


def force_state(db: Database, slug: str, alert_id: int, state: str) -> None:
    """Put an alert in `state` as the loop would have left it."""
    values: dict = {"state": state}
    if state == OPEN:
        values.update(assignee_staff_id=None, level="village")
    if state in (ACKNOWLEDGED, RESOLVED, FALSE_ALARM):
        values.update(acknowledged_at=NOW, acknowledged_by="测试")
    if state in (RESOLVED, FALSE_ALARM):
        values.update(closed_at=NOW, outcome="已处置")
    with db.tenant(slug) as conn:
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))


def snapshot(db: Database, slug: str, alert_id: int) -> tuple:
    """Everything a step could change: the row, its timeline, the outbox, the audit log."""
    with db.tenant(slug) as conn:
        row = dict(conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().one())
        events = conn.execute(
            select(func.count()).where(alert_events.c.alert_id == alert_id)
        ).scalar_one()
        shared = conn.execute(
            select(func.count()).where(
                outbox.c.record_type == ALERT, outbox.c.record_id == alert_id
            )
        ).scalar_one()
    with db.platform() as conn:
        audited = conn.execute(
            select(func.count()).where(
                pm.audit_log.c.village == slug,
                pm.audit_log.c.subject_id == str(alert_id),
                pm.audit_log.c.subject_type == ALERT,
            )
        ).scalar_one()
    return row, events, shared, audited


@pytest.fixture(scope="module")
def shared_place(db: Database, shared_village) -> Place:
    """The module's shared village, for the state-machine walk: each case raises its own alert."""
    return Place(db, shared_village.slug)


def a_colleague(db: Database, slug: str) -> int:
    """Grid staff of no grid (e.g. from the village office)."""
    with db.tenant(slug) as conn:
        return conn.execute(
            insert(tm.grid_staff)
            .values(name="村委值班员", tier="grid_worker")
            .returning(tm.grid_staff.c.id)
        ).scalar_one()


def a_fire(place: Place) -> int:
    """A fresh fire alert (a kind shared with neighbours) of a camera of its own."""
    with place.db.tenant(place.slug) as conn:
        camera = Place.device(conn, "ai_camera", grid_id=place.grid)
        [raised] = raise_alerts(
            conn,
            INGEST,
            place.slug,
            [Trigger("fire", f"device:{camera}", NOW, "明火", camera)],
            NOW,
        )
    return raised.id


def test_the_table_allows_exactly_the_documented_steps():
    table = {
        (state, step): target
        for state, steps in ALERT_TRANSITIONS.items()
        for step, target in steps.items()
    }
    assert table == ALLOWED_STEPS
    assert set(ALERT_TRANSITIONS) == set(ALERT_STATES)
    assert set(ALERT_STEPS) == {step for _, step in ALLOWED_STEPS}


@pytest.mark.parametrize("state", ALERT_STATES)
@pytest.mark.parametrize("step", ALERT_STEPS)
def test_every_step_from_every_state(db, gql, token, shared_place, state, step):
    place, slug = shared_place, shared_place.slug
    admin = token("village-admin", village=slug)
    alert_id = a_fire(place)
    force_state(db, slug, alert_id, state)
    before = snapshot(db, slug, alert_id)
    # Reassigning goes to a colleague of no grid: never the one it is assigned to.
    extra = {"assignee": gid(slug, a_colleague(db, slug), "GridStaff")} if step == REASSIGN else {}

    payload = run_step(gql, admin, step, gid(slug, alert_id), **extra)

    target = ALLOWED_STEPS.get((state, step))
    if target is None:
        assert errors_of(payload) == [("state", "INVALID_TRANSITION")]
        assert payload["userErrors"][0]["message"] == "预警当前状态不允许此操作"
        assert payload["alert"] is None
        assert snapshot(db, slug, alert_id) == before
        return
    assert payload["userErrors"] == []
    alert = payload["alert"]
    assert alert["state"] == target.upper()
    assert alert["version"] == before[0]["version"] + 1
    last = alert["timeline"][-1]
    assert (last["action"], last["fromState"], last["toState"]) == (
        step,
        state.upper(),
        target.upper(),
    )
    after = snapshot(db, slug, alert_id)
    # One timeline row, one outbox row (a fire), one audit entry.
    assert after[1:] == (before[1] + 1, before[2] + 1, before[3] + 1)
    if target == ACKNOWLEDGED:
        assert alert["acknowledgedAt"] and alert["acknowledgedBy"]
        assert not alert["overdue"]
    if target in (RESOLVED, FALSE_ALARM):
        assert alert["closedAt"] and alert["outcome"] == STEP_MUTATIONS[step][2].get(
            "outcome", STEP_MUTATIONS[step][2].get("note")
        )
        assert alert["acknowledgedAt"]
    if step == REASSIGN:
        assert alert["assignee"]["id"] == extra["assignee"]
        assert alert["acknowledgedAt"] is None and alert["notifiedAt"] is None
        assert last["staff"]["id"] == extra["assignee"]


def test_an_outcome_and_a_false_alarm_note_are_required(db, gql, token, shared_place):
    place, slug = shared_place, shared_place.slug
    admin = token("village-admin", village=slug)
    alert_id = a_fire(place)
    force_state(db, slug, alert_id, ACKNOWLEDGED)
    before = snapshot(db, slug, alert_id)
    for outcome in ("", "   "):
        payload = run_step(gql, admin, RESOLVE, gid(slug, alert_id), outcome=outcome)
        assert payload["userErrors"] == [
            {"field": "outcome", "message": "处置结果不能为空", "code": "REQUIRED"}
        ]
    payload = run_step(gql, admin, RESOLVE, gid(slug, alert_id), outcome="好" * 501)
    assert payload["userErrors"][0]["message"] == "处置结果不能超过500个字"
    payload = run_step(gql, admin, MARK_FALSE_ALARM, gid(slug, alert_id), note=" ")
    assert errors_of(payload) == [("note", "REQUIRED")]
    assert snapshot(db, slug, alert_id) == before
    # Left out altogether: the action's own message, in Chinese.
    with db.tenant(slug) as conn, pytest.raises(ActionFailed) as refused:
        do_resolve_alert(conn, ADMIN, slug, alert_id, {}, scope=WHOLE_VILLAGE)
    assert [(e.field, e.message, e.code) for e in refused.value.errors] == [
        ("outcome", "请填写处置结果", "REQUIRED")
    ]


def test_reassign_refusals(db, gql, token, shared_place, other_village):
    place, slug = shared_place, shared_place.slug
    admin = token("village-admin", village=slug)
    alert_id = a_fire(place)
    with db.tenant(slug) as conn:
        current = conn.execute(
            select(alerts.c.assignee_staff_id).where(alerts.c.id == alert_id)
        ).scalar_one()
    before = snapshot(db, slug, alert_id)
    cases = {
        gid(slug, current, "GridStaff"): ("assignee", "DUPLICATE"),
        gid(slug, 999999, "GridStaff"): ("assignee", "NOT_FOUND"),
        gid(other_village.slug, current, "GridStaff"): ("assignee", "NOT_FOUND"),
        gid(slug, current, "Resident"): ("assignee", "NOT_FOUND"),
    }
    for assignee, expected in cases.items():
        payload = run_step(gql, admin, REASSIGN, gid(slug, alert_id), assignee=assignee)
        assert errors_of(payload) == [expected]
    assert snapshot(db, slug, alert_id) == before
    # An alert of no such id is NOT_FOUND as a userError, like any other.
    payload = run_step(gql, admin, ACKNOWLEDGE, gid(slug, 999999))
    assert errors_of(payload) == [("id", "NOT_FOUND")]


# -- the loop through the API, and who may do what ---------------------------------------------


def grid_worker(token, slug: str) -> str:
    return token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))


@pytest.fixture
def integrator_of(db, token):
    """An integrator whose client is granted `slug` with `scopes`."""

    def grant(slug: str, *scopes: str) -> str:
        client = f"al-{uuid.uuid4().hex[:10]}"
        with db.platform() as conn:
            conn.execute(
                insert(pm.api_clients).values(
                    client_id=client, name="网格员App", villages=[slug], scopes=list(scopes)
                )
            )
        return token("integrator", client=client)

    return grant


def notify_jobs(redis_client) -> list[tuple]:
    return [(job.func_name, job.args) for job in Queue(NOTIFY, connection=redis_client).get_jobs()]


@pytest.mark.usefixtures("job_env")
def test_the_loop_a_grid_worker_meets(db, gql, token, place, redis_client, settings):
    """Raised in the worker's grid → in their feed → acknowledged → resolved, each step on
    the timeline and each change enqueued on the notify queue once it committed."""
    slug = place.slug
    worker = grid_worker(token, slug)
    with db.tenant(slug) as conn:
        assert place.grid in grids_of_account(conn, demo_grid_worker_subject(slug))
        me = conn.execute(
            select(tm.grid_staff.c.id).where(
                tm.grid_staff.c.account_sub == demo_grid_worker_subject(slug)
            )
        ).scalar_one()
    [raised] = place.raise_([place.fall(NOW)], datetime.now(UTC))
    enqueue_alert_notifications(settings, slug, [raised.id], "alert.raised")
    assert notify_jobs(redis_client) == [
        ("villagelink.jobs.alerts.notify_alert", (slug, raised.id, "alert.raised"))
    ]

    _, body = gql(FEED, worker, {"slug": slug, "state": ["ASSIGNED"]})
    [edge] = body["data"]["village"]["alerts"]["edges"]
    alert = edge["node"]
    assert alert["id"] == gid(slug, raised.id)
    assert (alert["kind"], alert["severity"], alert["level"]) == ("FALL", "CRITICAL", "GRID")
    assert alert["resident"]["idNumber"].count("*") > 0  # masked as everywhere
    assert alert["device"] == {"id": gid(slug, place.radar, "Device"), "kind": "MMWAVE_RADAR"}
    assert alert["household"]["id"] == gid(slug, place.household, "Household")
    assert "*" in (alert["assignee"]["phone"] or "*")
    assert [e["action"] for e in alert["timeline"]] == ["raise", "assign"]

    acked = run_step(gql, worker, ACKNOWLEDGE, alert["id"])
    assert acked["userErrors"] == []
    assert acked["alert"]["state"] == "ACKNOWLEDGED"
    # Whoever of the grid acknowledges takes it over.
    assert acked["alert"]["assignee"]["id"] == gid(slug, me, "GridStaff")
    assert acked["alert"]["timeline"][-1]["staff"]["id"] == gid(slug, me, "GridStaff")
    resolved = run_step(gql, worker, RESOLVE, alert["id"], outcome="老人已扶起，无外伤，家属已到")
    assert resolved["alert"]["state"] == "RESOLVED"
    assert resolved["alert"]["outcome"] == "老人已扶起，无外伤，家属已到"
    assert [e["action"] for e in resolved["alert"]["timeline"]] == [
        "raise",
        "assign",
        "acknowledge",
        "resolve",
    ]
    assert notify_jobs(redis_client)[1:] == [
        ("villagelink.jobs.alerts.notify_alert", (slug, raised.id, "alert.acknowledged")),
        ("villagelink.jobs.alerts.notify_alert", (slug, raised.id, "alert.resolved")),
    ]
    # A refused step enqueues nothing.
    run_step(gql, worker, ACKNOWLEDGE, alert["id"])
    assert len(notify_jobs(redis_client)) == 3


def test_a_grid_worker_reaches_their_grids_and_what_is_theirs_only(db, gql, token, place):
    slug = place.slug
    worker = grid_worker(token, slug)
    with db.tenant(slug) as conn:
        mine = grids_of_account(conn, demo_grid_worker_subject(slug))
        elsewhere = conn.execute(
            insert(tm.grids)
            .values(level="community", code="Y-00", name="别的网格")
            .returning(tm.grids.c.id)
        ).scalar_one()
        assert elsewhere not in mine
        me = conn.execute(
            select(tm.grid_staff.c.id).where(
                tm.grid_staff.c.account_sub == demo_grid_worker_subject(slug)
            )
        ).scalar_one()
        far = Place.device(conn, "smoke_sensor", grid_id=elsewhere)
    [inside] = place.raise_([place.fall(NOW)])
    [outside] = place.raise_([Trigger("smoke", f"device:{far}", NOW, "烟雾报警", far)])

    def seen() -> set[str]:
        _, body = gql(FEED, worker, {"slug": slug})
        return {e["node"]["id"] for e in body["data"]["village"]["alerts"]["edges"]}

    assert seen() == {gid(slug, inside.id)}
    _, body = gql(NODE, worker, {"id": gid(slug, outside.id)})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    before = snapshot(db, slug, outside.id)
    payload = run_step(gql, worker, ACKNOWLEDGE, gid(slug, outside.id))
    assert errors_of(payload) == [("id", "NOT_FOUND")]
    assert snapshot(db, slug, outside.id) == before
    # Reassigning is the village admin's; once assigned to them by name, it is theirs too.
    reassign = {"assignee": gid(slug, me, "GridStaff")}
    _, body = gql(
        step_mutation(REASSIGN), worker, {"input": {"id": gid(slug, outside.id), **reassign}}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin = token("village-admin", village=slug)
    assert run_step(gql, admin, REASSIGN, gid(slug, outside.id), **reassign)["userErrors"] == []
    assert seen() == {gid(slug, inside.id), gid(slug, outside.id)}
    assert run_step(gql, worker, ACKNOWLEDGE, gid(slug, outside.id))["userErrors"] == []


def test_coordinators_read_and_integrators_need_alerts_read(
    db, gql, token, place, integrator_of, other_village
):
    slug = place.slug
    [raised] = place.raise_([place.fall(NOW)])
    alert_id = gid(slug, raised.id)

    coordinator = token("regional-coordinator", region=TEST_REGION)
    _, body = gql(FEED, coordinator, {"slug": slug})
    assert [e["node"]["id"] for e in body["data"]["village"]["alerts"]["edges"]] == [alert_id]
    # Coordinators act on alerts risen to the region only (tests/test_tasks.py): this one
    # is still the grid's.
    _, body = gql(step_mutation(ACKNOWLEDGE), coordinator, {"input": {"id": alert_id}})
    assert errors_of(body["data"]["acknowledgeAlert"]) == [("id", "NOT_FOUND")]

    # A grid workers' app with alerts:read alone: the root feed, read only, no residents.
    app = integrator_of(slug, "alerts:read")
    _, body = gql(ROOT_FEED, app, {"slug": slug})
    [edge] = body["data"]["alerts"]["edges"]
    assert edge["node"]["id"] == alert_id
    assert (edge["node"]["resident"], edge["node"]["household"], edge["node"]["device"]) == (
        None,
        None,
        None,
    )
    assert edge["node"]["assignee"]["name"]
    _, body = gql(FEED, app, {"slug": slug})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # village(slug) is for readers
    _, body = gql(step_mutation(ACKNOWLEDGE), app, {"input": {"id": alert_id}})
    assert body["errors"][0]["extensions"]["code"] in ("NOT_FOUND", "FORBIDDEN")

    # Reading residents is not reading alerts.
    residents_app = integrator_of(slug, "residents:read")
    _, body = gql(FEED, residents_app, {"slug": slug})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _, body = gql(ROOT_FEED, residents_app, {"slug": slug})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Granted another village only, or another village's admin: nothing here.
    for stranger in (
        integrator_of(other_village.slug, "alerts:read"),
        token("village-admin", village=other_village.slug),
    ):
        _, body = gql(ROOT_FEED, stranger, {"slug": slug})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        _, body = gql(step_mutation(ACKNOWLEDGE), stranger, {"input": {"id": alert_id}})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_the_feed_newest_first_filtered_and_paged(db, gql, token, place):
    slug = place.slug
    admin = token("village-admin", village=slug)
    with db.tenant(slug) as conn:
        cameras = [Place.device(conn, "ai_camera", grid_id=place.grid) for _ in range(3)]
    ids = []
    for n, camera in enumerate(cameras):
        [raised] = place.raise_(
            [Trigger("fire_lane_blocked", f"device:{camera}", NOW, f"占用{n}", camera)],
            NOW + n * MINUTE,
        )
        ids.append(gid(slug, raised.id))
    [fall] = place.raise_([place.fall(NOW)], NOW - MINUTE)
    place.close(fall.id, NOW)

    def feed(**variables) -> list[str]:
        _, body = gql(FEED, admin, {"slug": slug, **variables})
        assert "errors" not in body, body
        return [e["node"]["id"] for e in body["data"]["village"]["alerts"]["edges"]]

    assert feed() == [*reversed(ids), gid(slug, fall.id)]
    assert feed(state=["RESOLVED"]) == [gid(slug, fall.id)]
    assert feed(kind=["FIRE_LANE_BLOCKED"], state=["ASSIGNED", "OPEN"]) == list(reversed(ids))
    assert feed(grid=gid(slug, place.parent, "Grid")) == feed()  # the grids below match
    assert feed(grid=gid("elsewhere", place.grid, "Grid")) == []
    assert feed(level="VILLAGE") == []
    _, body = gql(FEED, admin, {"slug": slug, "first": 2})
    page = body["data"]["village"]["alerts"]
    assert page["totalCount"] == 4 and page["pageInfo"]["hasNextPage"]
    assert feed(first=2, after=page["pageInfo"]["endCursor"]) == [ids[0], gid(slug, fall.id)]


# -- escalation (逐级上报) on a controlled clock ------------------------------------------------


def levels(place: Place) -> dict[int, tuple]:
    return {a["id"]: (a["state"], a["level"], a["ack_due_at"]) for a in place.alerts()}


def escalations(place: Place, alert_id: int) -> list[tuple]:
    e = alert_events
    with place.db.tenant(place.slug) as conn:
        rows = conn.execute(
            select(e.c.level, e.c.actor_sub, e.c.from_state, e.c.to_state, e.c.created_at)
            .where(e.c.alert_id == alert_id, e.c.action == "escalate")
            .order_by(e.c.id)
        )
        return [tuple(row) for row in rows]


def run_escalation(settings, slug: str, now: datetime) -> dict:
    job = queue(MAINTENANCE, settings).enqueue(alert_jobs.escalate_village_alerts, slug, now)
    work_off_queue(settings, MAINTENANCE)
    assert job.get_status(refresh=True) == "finished", job.latest_result().exc_string
    return job.return_value()


def work_off_queue(settings, name: str) -> None:
    """Run what waits on one queue, in forked work horses as `villagelink worker` does."""
    q = queue(name, settings)
    VillageWorker([q], connection=q.connection).work(burst=True)


@pytest.mark.usefixtures("job_env")
def test_escalation_grid_village_region_on_a_controlled_clock(settings, place, redis_client):
    (fall,) = place.raise_([place.fall(NOW)])  # five minutes to acknowledge
    (fire,) = place.raise_([place.fire(NOW)])  # two
    (acked,) = place.raise_([Trigger("sos", "device:sos", NOW, "呼救", place.radar)])
    force_state(place.db, place.slug, acked.id, ACKNOWLEDGED)
    slug = place.slug
    with place.db.tenant(slug) as conn:  # as the notify jobs would have
        conn.execute(update(alerts).values(notified_at=NOW))

    assert run_escalation(settings, slug, NOW + MINUTE) == {"escalated": [], "renotified": []}
    at = NOW + 3 * MINUTE
    assert run_escalation(settings, slug, at)["escalated"] == [fire.id]
    # The village admin gets the kind's two minutes anew.
    assert levels(place)[fire.id] == ("assigned", "village", at + 2 * MINUTE)
    assert notify_jobs(redis_client) == [
        ("villagelink.jobs.alerts.notify_alert", (slug, fire.id, "alert.escalated"))
    ]
    # Idempotent: the same moment again changes nothing, not even the timeline.
    before = snapshot(place.db, slug, fire.id)
    assert run_escalation(settings, slug, at)["escalated"] == []
    assert snapshot(place.db, slug, fire.id) == before

    later = NOW + 6 * MINUTE
    assert run_escalation(settings, slug, later)["escalated"] == [fall.id, fire.id]
    assert levels(place)[fire.id] == ("assigned", "region", at + 2 * MINUTE)
    assert levels(place)[fall.id] == ("assigned", "village", later + 5 * MINUTE)
    assert run_escalation(settings, slug, NOW + timedelta(hours=1))["escalated"] == [fall.id]
    # The region is the top; acknowledged alerts never rise.
    assert run_escalation(settings, slug, NOW + timedelta(hours=2))["escalated"] == []
    assert levels(place)[acked.id][:2] == ("acknowledged", "grid")
    assert [(lvl, who, f, t) for lvl, who, f, t, _ in escalations(place, fire.id)] == [
        ("village", "system:escalation", "assigned", "assigned"),
        ("region", "system:escalation", "assigned", "assigned"),
    ]
    assert [e[-1] for e in escalations(place, fire.id)] == [at, later]
    assert escalations(place, acked.id) == []
    with place.db.platform() as conn:
        audited = conn.execute(
            select(func.count()).where(
                pm.audit_log.c.village == slug, pm.audit_log.c.action == "alert.escalate"
            )
        ).scalar_one()
    assert audited == 4
    # A fire is shared: each escalation went to the outbox with its version.
    with place.db.tenant(slug) as conn:
        versions = conn.execute(
            select(outbox.c.version, outbox.c.payload["level"].astext)
            .where(outbox.c.record_type == ALERT, outbox.c.record_id == fire.id)
            .order_by(outbox.c.id)
        ).all()
    assert [tuple(v) for v in versions] == [(1, "grid"), (2, "village"), (3, "region")]


@pytest.mark.every_village
@pytest.mark.usefixtures("job_env")
def test_escalation_fans_out_per_village_every_minute(settings, shared_place, redis_client):
    # It reads its own fire only: the sweep may raise the level of the shared village's
    # other alerts, which no case looks at again.
    place = shared_place
    (fire,) = place.raise_([place.fire(NOW)])
    now = NOW + 3 * MINUTE
    job_ids = alert_jobs.escalate_unacknowledged_alerts(now)
    jobs = [queue(MAINTENANCE, settings).fetch_job(job_id) for job_id in job_ids]
    [ours] = [job for job in jobs if job.args == (place.slug, now)]
    assert ours.retries_left == alert_jobs.ESCALATION_RETRY.max
    work_off_queue(settings, MAINTENANCE)
    assert levels(place)[fire.id][1] == "village"

    scheduler = build_cron_scheduler(redis_client)
    [cron] = [
        j for j in scheduler.get_jobs() if j.func is alert_jobs.escalate_unacknowledged_alerts
    ]
    assert (cron.queue_name, cron.interval) == (MAINTENANCE, 60)


# -- telling people: the notify job ---------------------------------------------------------------


def timeline_notes(place: Place, alert_id: int, action: str) -> list[str]:
    e = alert_events
    with place.db.tenant(place.slug) as conn:
        return list(
            conn.execute(
                select(e.c.note)
                .where(e.c.alert_id == alert_id, e.c.action == action)
                .order_by(e.c.id)
            ).scalars()
        )


@pytest.mark.usefixtures("job_env")
def test_notify_alert_marks_the_alert_and_writes_whom_it_told(settings, place):
    (fall,) = place.raise_([place.fall(NOW)])
    [alert] = place.alerts()
    assert alert["notified_at"] is None
    assert alert_jobs.notify_alert(place.slug, fall.id, "alert.raised") == 0  # no subscriber
    [alert] = place.alerts()
    assert alert["notified_at"] is not None
    with place.db.tenant(place.slug) as conn:
        name = conn.execute(
            select(tm.grid_staff.c.name).where(tm.grid_staff.c.id == alert["assignee_staff_id"])
        ).scalar_one()
    assert timeline_notes(place, fall.id, "notify") == [
        f"alert.raised：已通知网格员{name}（推送0个对接系统）"
    ]
    # Sent again by the sweep after all: nothing more happens.
    assert (
        alert_jobs.notify_alert(place.slug, fall.id, "alert.raised", only_if_unnotified=True)
        is None
    )
    # A closing notice does not touch notified_at.
    alert_jobs.notify_alert(place.slug, fall.id, "alert.resolved")
    assert place.alerts()[0]["notified_at"] == alert["notified_at"]
    assert alert_jobs.notify_alert(place.slug, 999999, "alert.raised") is None


@pytest.mark.usefixtures("job_env")
def test_a_notification_lost_with_redis_is_sent_again(settings, place, redis_client):
    """Raised, its job never ran (Redis lost it): 30 s later the sweep enqueues it again."""
    (fall,) = place.raise_([place.fall(NOW)])
    assert run_escalation(settings, place.slug, NOW + timedelta(seconds=20))["renotified"] == []
    result = run_escalation(settings, place.slug, NOW + timedelta(seconds=31))
    assert result == {"escalated": [], "renotified": [fall.id]}
    [job] = Queue(NOTIFY, connection=redis_client).get_jobs()
    assert (job.args, job.kwargs) == (
        (place.slug, fall.id, "alert.raised"),
        {"only_if_unnotified": True},
    )
    work_off_queue(settings, NOTIFY)
    assert place.alerts()[0]["notified_at"] is not None
    assert run_escalation(settings, place.slug, NOW + timedelta(seconds=90))["renotified"] == []
    # An escalation whose notification was lost: sent again as an escalation.
    result = run_escalation(settings, place.slug, NOW + 5 * MINUTE)
    assert result["escalated"] == [fall.id]
    Queue(NOTIFY, connection=redis_client).empty()
    result = run_escalation(settings, place.slug, NOW + 5 * MINUTE + timedelta(seconds=31))
    assert result == {"escalated": [], "renotified": [fall.id]}
    [job] = Queue(NOTIFY, connection=redis_client).get_jobs()
    assert job.args[2] == "alert.escalated"


# -- the duty roster and the rules, as the village admin sets them ----------------------------

SCHEDULE = """mutation($input: ScheduleDutyShiftInput!) { scheduleDutyShift(input: $input) {
  dutyShift { id staff { id name } startsAt endsAt onDuty } userErrors { field message code } } }"""
CANCEL = """mutation($input: CancelDutyShiftInput!) { cancelDutyShift(input: $input) {
  dutyShift { id startsAt } userErrors { field message code } } }"""
ROSTER = """query($slug: String!, $from: DateTime, $to: DateTime, $staff: ID) {
  village(slug: $slug) { dutyShifts(from: $from, to: $to, staff: $staff, first: 50) {
    totalCount edges { node { id staff { id } startsAt endsAt onDuty } } } } }"""
RULES = """query($slug: String!) { village(slug: $slug) {
  alertRules { kind enabled severity ackMinutes debounceMinutes } } }"""
UPDATE_RULE = """mutation($input: UpdateAlertRuleInput!) { updateAlertRule(input: $input) {
  rule { kind enabled severity ackMinutes debounceMinutes } userErrors { field message code } } }"""


def test_the_duty_roster(db, gql, token, place):
    slug = place.slug
    admin = token("village-admin", village=slug)
    staff = gid(slug, place.workers[0], "GridStaff")
    now = datetime.now(UTC)

    def schedule(starts: datetime, ends: datetime, who: str = staff) -> dict:
        _, body = gql(
            SCHEDULE,
            admin,
            {
                "input": {
                    "village": slug,
                    "staff": who,
                    "startsAt": starts.isoformat(),
                    "endsAt": ends.isoformat(),
                }
            },
        )
        assert "errors" not in body, body
        return body["data"]["scheduleDutyShift"]

    current = schedule(now - timedelta(hours=1), now + timedelta(hours=7))
    assert current["userErrors"] == [] and current["dutyShift"]["onDuty"]
    assert current["dutyShift"]["staff"]["id"] == staff
    tomorrow = schedule(now + timedelta(days=1), now + timedelta(days=1, hours=8))["dutyShift"]
    assert not tomorrow["onDuty"]

    refusals = [
        (
            schedule(now + timedelta(hours=6), now + timedelta(hours=9)),
            ("startsAt", "DUPLICATE"),
            "与该网格员已有的值班时段重叠",
        ),
        (
            schedule(now + timedelta(hours=9), now + timedelta(hours=8)),
            ("endsAt", "INVALID"),
            "结束时间须晚于开始时间",
        ),
        (
            schedule(now + timedelta(days=3), now + timedelta(days=11)),
            ("endsAt", "INVALID"),
            "一次值班最长7天",
        ),
        (
            schedule(now, now + MINUTE, gid(slug, 999999, "GridStaff")),
            ("staff", "NOT_FOUND"),
            "网格员不存在",
        ),
    ]
    for payload, error, message in refusals:
        assert errors_of(payload) == [error] and payload["userErrors"][0]["message"] == message
    _, body = gql(
        SCHEDULE,
        admin,
        {
            "input": {
                "village": slug,
                "staff": staff,
                "startsAt": "2026-12-20T08:00:00",
                "endsAt": "2026-12-20T16:00:00",
            }
        },
    )
    assert errors_of(body["data"]["scheduleDutyShift"]) == [
        ("startsAt", "INVALID"),
        ("endsAt", "INVALID"),
    ]

    _, body = gql(ROSTER, admin, {"slug": slug})
    roster = body["data"]["village"]["dutyShifts"]
    assert [e["node"]["id"] for e in roster["edges"]] == [
        current["dutyShift"]["id"],
        tomorrow["id"],
    ]
    _, body = gql(ROSTER, admin, {"slug": slug, "from": (now + timedelta(hours=12)).isoformat()})
    assert body["data"]["village"]["dutyShifts"]["totalCount"] == 1
    _, body = gql(ROSTER, admin, {"slug": slug, "from": "2026-12-20T08:00:00"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    _, body = gql(CANCEL, admin, {"input": {"id": tomorrow["id"], "note": "调休"}})
    assert body["data"]["cancelDutyShift"]["dutyShift"]["id"] == tomorrow["id"]
    _, body = gql(CANCEL, admin, {"input": {"id": tomorrow["id"]}})
    assert errors_of(body["data"]["cancelDutyShift"]) == [("id", "NOT_FOUND")]
    # A shift that has ended is the record of who was on duty: it stays.
    with db.tenant(slug) as conn:
        ended = conn.execute(
            insert(duty_shifts)
            .values(
                staff_id=place.workers[0],
                starts_at=now - timedelta(days=2),
                ends_at=now - timedelta(days=1),
            )
            .returning(duty_shifts.c.id)
        ).scalar_one()
    _, body = gql(CANCEL, admin, {"input": {"id": gid(slug, ended, "DutyShift")}})
    assert errors_of(body["data"]["cancelDutyShift"]) == [("id", "INVALID_TRANSITION")]

    # The roster is the village admin's to set; grid workers and coordinators read it.
    for caller in (grid_worker(token, slug), token("regional-coordinator", region=TEST_REGION)):
        _, body = gql(
            SCHEDULE,
            caller,
            {
                "input": {
                    "village": slug,
                    "staff": staff,
                    "startsAt": now.isoformat(),
                    "endsAt": (now + MINUTE).isoformat(),
                }
            },
        )
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        _, body = gql(CANCEL, caller, {"input": {"id": current["dutyShift"]["id"]}})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        _, body = gql(ROSTER, caller, {"slug": slug})
        assert body["data"]["village"]["dutyShifts"]["totalCount"] == 1
    with db.platform() as conn:
        audited = (
            conn.execute(
                select(pm.audit_log.c.action)
                .where(pm.audit_log.c.village == slug, pm.audit_log.c.subject_type == "DutyShift")
                .order_by(pm.audit_log.c.occurred_at)
            )
            .scalars()
            .all()
        )
    assert audited == ["duty_shift.schedule", "duty_shift.schedule", "duty_shift.cancel"]


def test_the_rules_per_village(db, gql, token, place):
    slug = place.slug
    admin = token("village-admin", village=slug)
    _, body = gql(RULES, admin, {"slug": slug})
    rules = {r["kind"]: r for r in body["data"]["village"]["alertRules"]}
    assert set(rules) == {kind.upper() for kind in ALERT_KINDS}
    assert (rules["FALL"]["ackMinutes"], rules["FIRE"]["ackMinutes"]) == (5, 2)
    assert body["data"]["village"]["alertRules"][0]["severity"] == "CRITICAL"

    def change(**fields) -> dict:
        _, body = gql(UPDATE_RULE, admin, {"input": {"village": slug, **fields}})
        assert "errors" not in body, body
        return body["data"]["updateAlertRule"]

    changed = change(kind="FALL", ackMinutes=3, severity="HIGH")
    assert changed["rule"] == {
        "kind": "FALL",
        "enabled": True,
        "severity": "HIGH",
        "ackMinutes": 3,
        "debounceMinutes": 10,
    }
    [raised] = place.raise_([place.fall(NOW)])
    assert place.alerts()[0]["ack_due_at"] == NOW + 3 * MINUTE
    assert place.alerts()[0]["severity"] == "high"
    for fields, expected in [
        ({"ackMinutes": 0}, [("ackMinutes", "INVALID")]),
        ({"debounceMinutes": -1}, [("debounceMinutes", "INVALID")]),
        ({"ackMinutes": 1441}, [("ackMinutes", "INVALID")]),
    ]:
        assert errors_of(change(kind="FALL", **fields)) == expected
    assert (
        change(kind="FALL", ackMinutes=0)["userErrors"][0]["message"] == "确认时限须为1到1440分钟"
    )
    assert change(kind="VEHICLE_LINGERING", enabled=False)["rule"]["enabled"] is False
    with db.tenant(slug) as conn:
        camera = Place.device(conn, "ai_camera", grid_id=place.grid)
    assert (
        place.raise_([Trigger("vehicle_lingering", f"device:{camera}", NOW, "车辆滞留", camera)])
        == []
    )
    _, body = gql(
        UPDATE_RULE,
        grid_worker(token, slug),
        {"input": {"village": slug, "kind": "FALL", "ackMinutes": 30}},
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    with db.platform() as conn:
        audited = (
            conn.execute(
                select(pm.audit_log.c.details)
                .where(pm.audit_log.c.village == slug, pm.audit_log.c.action == "alert_rule.update")
                .order_by(pm.audit_log.c.occurred_at)
            )
            .scalars()
            .all()
        )
    assert audited[0] == {
        "ack_minutes": {"from": 5, "to": 3},
        "severity": {"from": "critical", "to": "high"},
    }
    assert raised.new


# -- statement counts ----------------------------------------------------------------------------


def test_the_feed_statement_count_is_pinned_and_flat(app, db, gql, token, place):
    slug = place.slug
    with db.tenant(slug) as conn:
        cameras = [Place.device(conn, "ai_camera", grid_id=place.grid) for _ in range(49)]
        residents = (
            conn.execute(
                select(tm.residents.c.id)
                .where(tm.residents.c.id != place.resident)
                .order_by(tm.residents.c.id)
                .limit(49)
            )
            .scalars()
            .all()
        )
        triggers = [
            Trigger("fall", f"resident:{resident}", NOW, "跌倒", camera, resident)
            for camera, resident in zip(cameras, residents, strict=True)
        ]
        raise_alerts(conn, INGEST, slug, triggers, NOW)
    place.raise_([place.fall(NOW)], NOW + MINUTE)
    admin = token("village-admin", village=slug)

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(FEED, admin, {"slug": slug, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["village"]["alerts"]["edges"]) == first
        return statements

    run(1)  # warm the pool: pre-ping is not ours to count
    five, fifty = run(5), run(50)
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, its count, grids, staff, devices, residents with their households,
    # timelines (their staff are the assignees, already loaded)
    assert len(five) == len(fifty) == 8, "\n".join(fifty)


# -- end to end: an alert raised reaches a subscribed integrator -------------------------------

SUBSCRIBE = """mutation($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) { secret userErrors { field code } } }"""


@pytest.mark.usefixtures("job_env")
def test_a_raise_ends_with_a_delivery_to_a_subscribed_integrator(
    gql,
    place,
    integrator_of,
    receiver,  # noqa: F811 (the fixture imported above)
    settings,
):
    slug = place.slug
    app = integrator_of(slug, "alerts:read")
    _, body = gql(
        SUBSCRIBE,
        app,
        {"input": {"url": receiver.url, "eventTypes": ["alert.raised", "alert.acknowledged"]}},
    )
    assert body["data"]["createWebhookSubscription"]["userErrors"] == [], body
    receiver.secret = body["data"]["createWebhookSubscription"]["secret"]

    [raised] = place.raise_([place.fall(NOW)], datetime.now(UTC))
    enqueue_alert_notifications(settings, slug, [raised.id], "alert.raised")
    work_off_queue(settings, NOTIFY)  # the notify job, then the delivery it enqueued

    [envelope] = receiver.envelopes()
    assert (envelope["type"], envelope["village"]) == ("alert.raised", slug)
    alert = envelope["data"]["alert"]
    assert alert["id"] == gid(slug, raised.id)
    assert (alert["kind"], alert["state"], alert["level"]) == ("fall", "assigned", "grid")
    assert alert["grid"]["id"] == gid(slug, place.grid, "Grid")
    assert "*" in alert["assignee"]["phone"]
    assert not {"resident", "resident_id", "id_number", "phone"} & set(alert)
    with place.db.platform() as conn:
        delivered = conn.execute(
            select(webhook_deliveries.c.event_type, webhook_deliveries.c.state).where(
                webhook_deliveries.c.village == slug
            )
        ).all()
    assert [tuple(d) for d in delivered] == [("alert.raised", "delivered")]
    assert timeline_notes(place, raised.id, "notify")[0].endswith("（推送1个对接系统）")
