"""The safety alert loop (预警): raising with debouncing, placing and assignment by the
duty roster, every step of the state machine allowed and refused, escalation on a
controlled clock, roles, the notify jobs on the real queue, and statement counts.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import models as tm
from villagelink.tenants.outbox import outbox
from villagelink.tenants.sensing.alerting import ALERT, Trigger, raise_alerts
from villagelink.tenants.sensing.tables import (
    alert_events,
    alert_rules,
    alerts,
    devices,
    duty_shifts,
)

from .test_query_count import count_statements

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
    assert [r.kind for r in raised] == ["fire", "missing_person", "fall"]
    with place.db.tenant(place.slug) as conn:
        shared = conn.execute(
            select(outbox.c.record_id, outbox.c.payload).where(outbox.c.record_type == ALERT)
        ).all()
    payloads = {record_id: payload for record_id, payload in shared}
    assert sorted(payloads) == sorted(r.id for r in raised[:2])
    missing_payload = payloads[raised[1].id]
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
