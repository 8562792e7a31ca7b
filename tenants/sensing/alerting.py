"""Raising alerts from what devices report: one episode, one alert, told to the
grid worker of that place.

`raise_alerts` takes the triggers a batch of device events or health readings
produced (tenants/sensing/ingest.py builds them) and, in a fixed number of
statements whatever the batch size:

- drops kinds the village switched off (alert_rules.enabled);
- debounces: a trigger joins the live alert of its (kind, episode) — a radar that
  reports the same fall six times raises one alert seen six times — and a trigger
  that occurred before the episode's last alert was closed, within its debounce
  window, is a late report of that closed episode;
- raises a new alert for every other (kind, episode), placed by its device and
  resident, assigned to an on-duty grid worker of its grid (值班表), else any grid
  worker of the grid, else of a grid above, else left to the village admin;
- writes the timeline, one audit statement, and the outbox for the kinds that
  neighbouring villages must see (fire, missing person).

Two ingest calls racing on the same episode still make one alert: new alerts are
inserted with ON CONFLICT on the partial unique index `alerts_live_episode`, so
the later one joins the earlier one's alert. The caller enqueues notifications
after its commit (villagelink.jobs.alerts.enqueue_alert_notifications).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    Text,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert

from villagelink.platform.audit import Actor, entry, record_many
from villagelink.tenants import live
from villagelink.tenants import models as m
from villagelink.tenants.models import one_of
from villagelink.tenants.outbox import emit_many
from villagelink.tenants.sensing.tables import (
    ASSIGNED,
    CLOSED_STATES,
    FIRE,
    GRID,
    LIVE_STATES,
    MISSING_PERSON,
    OPEN,
    VILLAGE,
    alert_events,
    alert_rules,
    alerts,
    devices,
    duty_shifts,
)

ALERT = "Alert"
# Alerts neighbouring villages must see (a missing person may walk into theirs; a fire
# calls on their micro fire stations): each of their changes goes to the outbox.
SHARED_KINDS = (FIRE, MISSING_PERSON)
# The nearest to the place first: micro-grid workers, grid workers, the grid chief.
TIER_RANK = {"micro_grid_worker": 0, "grid_worker": 1, "grid_chief": 2}


@dataclass(frozen=True)
class Trigger:
    """One thing that should raise (or join) an alert."""

    kind: str  # one of ALERT_KINDS
    episode_key: str  # "resident:<id>" for personal triggers, else "device:<id>"
    occurred_at: datetime
    # zh-CN, what a grid worker reads: "跌倒报警（毫米波雷达 3号楼2单元101）", "心率 134 次/分"
    summary: str
    device_id: int | None
    resident_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class RaisedAlert:
    id: int
    kind: str
    new: bool  # False when the triggers joined an alert already raised
    triggers: int  # how many of the given triggers it took
    # Which episode: tells the caller where each of its triggers went.
    episode_key: str


@dataclass(frozen=True)
class _Episode:
    """The triggers of one call for one (kind, episode key), oldest first."""

    kind: str
    episode_key: str
    triggers: tuple[Trigger, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.episode_key)

    @property
    def first(self) -> Trigger:
        return self.triggers[0]

    @property
    def latest(self) -> Trigger:
        return self.triggers[-1]


def raise_alerts(
    conn: Connection, actor: Actor, village: str, triggers: list[Trigger], now: datetime
) -> list[RaisedAlert]:
    """Raise or join the alerts `triggers` call for, as of `now`. Returns one entry per
    alert touched, in the order its episode first appears in `triggers`."""
    rules = _enabled_rules(conn, {t.kind for t in triggers}) if triggers else {}
    episodes = _episodes(t for t in triggers if t.kind in rules)
    if not episodes:
        return []
    with conn.begin_nested():
        raised = _join_live(conn, actor, episodes, now)
        joined = {(r.kind, r.episode_key) for r in raised}
        late, fresh = _split_late_reports(
            conn, [e for e in episodes.values() if e.key not in joined]
        )
        raised += _join_closed(conn, actor, late, now)
        raised += _raise_new(conn, actor, village, fresh, rules, now)
        share(conn, [r.id for r in raised if r.kind in SHARED_KINDS])
    record_many(conn, [_audit_entry(actor, village, r) for r in raised])
    order = {key: n for n, key in enumerate(episodes)}
    return sorted(raised, key=lambda r: (order[(r.kind, r.episode_key)], r.new))


def _enabled_rules(conn: Connection, kinds: set[str]) -> dict[str, dict]:
    r = alert_rules
    rows = conn.execute(select(r).where(r.c.kind.in_(sorted(kinds)), r.c.enabled)).mappings()
    return {row["kind"]: dict(row) for row in rows}


def _episodes(triggers: Iterable[Trigger]) -> dict[tuple[str, str], _Episode]:
    """Triggers grouped by (kind, episode key), in key order: concurrent calls raising the
    same episodes then take the alerts' locks in one order and cannot deadlock."""
    grouped: dict[tuple[str, str], list[Trigger]] = {}
    for trigger in triggers:
        grouped.setdefault((trigger.kind, trigger.episode_key), []).append(trigger)
    return {
        key: _Episode(*key, tuple(sorted(found, key=lambda t: t.occurred_at)))
        for key, found in sorted(grouped.items())
    }


def _event(
    actor: Actor,
    alert_id: int,
    action: str,
    from_state: str | None,
    to_state: str,
    at: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """One timeline row (extra: level, staff_id, note)."""
    return {
        "alert_id": alert_id,
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "level": extra.get("level"),
        "staff_id": extra.get("staff_id"),
        "note": extra.get("note"),
        "actor_sub": actor.principal.sub,
        "actor_name": actor.principal.display_name,
        "created_at": at,
    }


# -- joining alerts already raised ------------------------------------------------------


def _batch(episodes: Iterable[_Episode]):
    """The episodes as a VALUES list to join against: kind, key, how many triggers, the
    latest occurrence and its coordinates (a wandering resident's last known place)."""
    rows = [
        (
            e.kind,
            e.episode_key,
            len(e.triggers),
            e.latest.occurred_at,
            e.latest.latitude,
            e.latest.longitude,
        )
        for e in episodes
    ]
    return values(
        column("kind", Text),
        column("episode_key", Text),
        column("triggers", Integer),
        column("occurred_at", DateTime(timezone=True)),
        column("latitude", Float),
        column("longitude", Float),
        name="batch",
    ).data(rows)


def _count_triggers(conn: Connection, which, episodes: Iterable[_Episode], now) -> list[dict]:
    """Count each episode's triggers on the one alert of its episode that `which` picks,
    in one statement; returns the alerts touched with the triggers counted."""
    a, batch = alerts, _batch(episodes)
    of_episode = (a.c.kind == batch.c.kind, a.c.episode_key == batch.c.episode_key, which)
    # In id order, as the escalation sweep takes them: joined in the plan's order, two
    # batches raising the same wearers' alerts at once took them in opposite orders and
    # deadlocked (tests/test_ingest.py).
    locked = (
        select(a.c.id)
        .where(*of_episode)
        .order_by(a.c.id)
        .with_for_update(of=a)
        .cte("locked")
        .prefix_with("MATERIALIZED")
    )
    rows = conn.execute(
        update(a)
        .where(a.c.id == locked.c.id, *of_episode)
        .values(
            occurrences=a.c.occurrences + batch.c.triggers,
            last_triggered_at=func.greatest(a.c.last_triggered_at, batch.c.occurred_at),
            # An all-NULL column of VALUES is text to PostgreSQL: say what it is.
            latitude=func.coalesce(cast(batch.c.latitude, Float), a.c.latitude),
            longitude=func.coalesce(cast(batch.c.longitude, Float), a.c.longitude),
            version=a.c.version + 1,
            updated_at=now,
        )
        .returning(a.c.id, a.c.kind, a.c.episode_key, a.c.state, a.c.level, batch.c.triggers)
    ).mappings()
    return [dict(row) for row in rows]


def _retrigger_events(
    actor: Actor, touched: list[dict], episodes: dict[tuple[str, str], _Episode], why: str, now
) -> list[dict]:
    """One timeline row per alert (not per trigger): how many joined, and the latest."""
    rows = []
    for alert in touched:
        episode = episodes[(alert["kind"], alert["episode_key"])]
        note = f"{why}{len(episode.triggers)}次，最近一次：{episode.latest.summary}"
        rows.append(
            _event(
                actor,
                alert["id"],
                "retrigger",
                alert["state"],
                alert["state"],
                now,
                level=alert["level"],
                note=note,
            )
        )
    return rows


def _raised(row: dict, *, new: bool) -> RaisedAlert:
    return RaisedAlert(row["id"], row["kind"], new, row["triggers"], row["episode_key"])


def _join_live(
    conn: Connection, actor: Actor, episodes: dict[tuple[str, str], _Episode], now: datetime
) -> list[RaisedAlert]:
    """Triggers of an episode whose alert is still live join it (one episode, one alert)."""
    joined = _count_triggers(conn, alerts.c.state.in_(LIVE_STATES), episodes.values(), now)
    if joined:
        events = _retrigger_events(actor, joined, episodes, "同一事件再次触发", now)
        conn.execute(alert_events.insert().values(events))
    return [_raised(row, new=False) for row in joined]


def _last_closed(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Each episode's most recently closed alert, with its kind's debounce window."""
    a, r = alerts, alert_rules
    query = (
        select(a.c.id, a.c.kind, a.c.episode_key, a.c.closed_at, a.c.last_triggered_at)
        .add_columns(r.c.debounce_minutes)
        .join(r, r.c.kind == a.c.kind)
        .ext(distinct_on(a.c.kind, a.c.episode_key))
        .where(tuple_(a.c.kind, a.c.episode_key).in_(keys), a.c.state.in_(CLOSED_STATES))
        .order_by(a.c.kind, a.c.episode_key, a.c.closed_at.desc(), a.c.id.desc())
    )
    return {(row["kind"], row["episode_key"]): dict(row) for row in conn.execute(query).mappings()}


def _is_late(trigger: Trigger, closed: dict) -> bool:
    """Occurred while the closed alert was still live, close to its last trigger."""
    window = timedelta(minutes=closed["debounce_minutes"])
    return (
        trigger.occurred_at < closed["closed_at"]
        and trigger.occurred_at <= closed["last_triggered_at"] + window
    )


def _split_late_reports(
    conn: Connection, waiting: list[_Episode]
) -> tuple[dict[int, _Episode], list[_Episode]]:
    """Of the episodes with no live alert: the triggers that belong to the episode's
    last closed alert (a device that buffered while offline), by that alert's id,
    and the others, which raise new alerts."""
    if not waiting:
        return {}, []
    closed = _last_closed(conn, [e.key for e in waiting])
    late: dict[int, _Episode] = {}
    fresh: list[_Episode] = []
    for episode in waiting:
        last = closed.get(episode.key)
        belongs = tuple(t for t in episode.triggers if last is not None and _is_late(t, last))
        rest = tuple(t for t in episode.triggers if t not in belongs)
        if belongs:
            late[last["id"]] = _Episode(episode.kind, episode.episode_key, belongs)
        if rest:
            fresh.append(_Episode(episode.kind, episode.episode_key, rest))
    return late, fresh


def _join_closed(
    conn: Connection, actor: Actor, late: dict[int, _Episode], now: datetime
) -> list[RaisedAlert]:
    """Late reports are counted on the closed alert of their episode, which stays closed."""
    if not late:
        return []
    joined = _count_triggers(conn, alerts.c.id.in_(list(late)), late.values(), now)
    episodes = {e.key: e for e in late.values()}
    events = _retrigger_events(actor, joined, episodes, "处置结束后才收到的迟报", now)
    conn.execute(alert_events.insert().values(events))
    return [_raised(row, new=False) for row in joined]


# -- new alerts: where, and who ------------------------------------------------------------


def _places(conn: Connection, fresh: list[_Episode]) -> list[dict[str, Any]]:
    """Where each episode happened, in one statement: the device's place, else its
    resident's household (a wristband goes where its wearer lives); the grid follows
    from the device, the household, the building or the resident."""
    d, r, h, b = devices, m.residents, m.households, m.buildings
    wanted = values(
        column("position", Integer),
        column("device_id", BigInteger),
        column("resident_id", BigInteger),
        name="wanted",
    ).data([(n, e.latest.device_id, e.latest.resident_id) for n, e in enumerate(fresh)])
    # An all-NULL column of VALUES is text to PostgreSQL: say what it is.
    device_id = cast(wanted.c.device_id, BigInteger)
    resident_id = func.coalesce(cast(wanted.c.resident_id, BigInteger), d.c.resident_id)
    household_id = func.coalesce(d.c.household_id, r.c.household_id)
    query = (
        select(
            wanted.c.position,
            d.c.id.label("device_id"),
            r.c.id.label("resident_id"),
            h.c.id.label("household_id"),
            b.c.id.label("building_id"),
            func.coalesce(d.c.grid_id, h.c.grid_id, b.c.grid_id, r.c.grid_id).label("grid_id"),
            func.coalesce(d.c.location_text, h.c.address, b.c.name).label("location_text"),
            d.c.latitude,
            d.c.longitude,
        )
        .select_from(wanted)
        .outerjoin(d, d.c.id == device_id)
        .outerjoin(r, r.c.id == resident_id)
        .outerjoin(h, h.c.id == household_id)
        .outerjoin(b, b.c.id == func.coalesce(d.c.building_id, h.c.building_id))
        .order_by(wanted.c.position)
    )
    places = [dict(row) for row in conn.execute(query).mappings()]
    for place, episode in zip(places, fresh, strict=True):
        del place["position"]
        # Where the person was last seen beats where the device was installed.
        if episode.latest.latitude is not None:
            place["latitude"] = episode.latest.latitude
            place["longitude"] = episode.latest.longitude
    return places


def on_duty_assignees(conn: Connection, grid_ids: set[int], now: datetime) -> dict[int, dict]:
    """Who takes an alert of each grid, in one statement: a grid worker of the grid on
    duty now (值班表), else any grid worker of the grid, else the same one grid up, and
    so on; the nearest tier first. Grids with no one up to the top are left out.
    Values: staff_id, on_duty, depth (0: the grid itself)."""
    if not grid_ids:
        return {}
    g, a, s, shift = m.grids, m.grid_assignments, m.grid_staff, duty_shifts
    up = select(
        g.c.id.label("origin"), g.c.id, g.c.parent_id, literal(0, Integer).label("depth")
    ).where(g.c.id.in_(sorted(grid_ids)))
    up = up.cte("grid_and_above", recursive=True)
    up = up.union_all(
        select(up.c.origin, g.c.id, g.c.parent_id, up.c.depth + 1).join(
            up, g.c.id == up.c.parent_id
        )
    )
    on_duty = exists().where(
        shift.c.staff_id == s.c.id, shift.c.starts_at <= now, shift.c.ends_at > now
    )
    tier_rank = case(TIER_RANK, value=s.c.tier, else_=len(TIER_RANK))
    query = (
        select(up.c.origin, s.c.id.label("staff_id"), on_duty.label("on_duty"), up.c.depth)
        .ext(distinct_on(up.c.origin))
        .join(a, a.c.grid_id == up.c.id)
        .join(s, s.c.id == a.c.staff_id)
        .order_by(up.c.origin, up.c.depth, on_duty.desc(), tier_rank, s.c.id)
    )
    return {row["origin"]: dict(row) for row in conn.execute(query).mappings()}


def assignment_note(assignee: dict) -> str:
    """Why this person: what the timeline tells whoever looks later."""
    if assignee["depth"] > 0:
        who = "上级网格值班网格员" if assignee["on_duty"] else "上级网格网格员"
    else:
        who = "值班网格员" if assignee["on_duty"] else "本网格网格员（无人值班）"
    return f"派给{who}"


NO_GRID_WORKER = "未找到负责该位置的网格员，由村（社区）处置"


def _raise_new(
    conn: Connection,
    actor: Actor,
    village: str,
    fresh: list[_Episode],
    rules: dict[str, dict],
    now: datetime,
) -> list[RaisedAlert]:
    """Insert one alert per episode, placed and assigned, and announce it to the open
    consoles. An episode whose alert another transaction raised meanwhile joins it
    instead (ON CONFLICT on the live-episode index)."""
    if not fresh:
        return []
    places = _places(conn, fresh)
    found = on_duty_assignees(conn, {p["grid_id"] for p in places if p["grid_id"]}, now)
    assignees = {e.key: found.get(place["grid_id"]) for e, place in zip(fresh, places, strict=True)}
    rows = []
    for episode, place in zip(fresh, places, strict=True):
        assignee = assignees[episode.key]
        rule = rules[episode.kind]
        rows.append(
            {
                **place,
                "kind": episode.kind,
                "severity": rule["severity"],
                "state": OPEN if assignee is None else ASSIGNED,
                "level": VILLAGE if assignee is None else GRID,
                "episode_key": episode.episode_key,
                "summary": episode.first.summary,
                "assignee_staff_id": None if assignee is None else assignee["staff_id"],
                "raised_at": now,
                "last_triggered_at": episode.latest.occurred_at,
                "occurrences": len(episode.triggers),
                "ack_due_at": now + timedelta(minutes=rule["ack_minutes"]),
                "created_at": now,
                "updated_at": now,
            }
        )
    a = alerts
    stmt = insert(a).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[a.c.kind, a.c.episode_key],
        # Literal, as in the index: with parameters, a statement psycopg has prepared
        # (after five runs) no longer proves it matches the partial index.
        index_where=text(one_of("state", LIVE_STATES)),
        set_={
            "occurrences": a.c.occurrences + stmt.excluded.occurrences,
            "last_triggered_at": func.greatest(
                a.c.last_triggered_at, stmt.excluded.last_triggered_at
            ),
            "latitude": func.coalesce(stmt.excluded.latitude, a.c.latitude),
            "longitude": func.coalesce(stmt.excluded.longitude, a.c.longitude),
            "version": a.c.version + 1,
            "updated_at": now,
        },
    )
    # A row this statement inserted has no xmax; one it updated (joined) has.
    inserted = literal_column("alerts.xmax = 0", Boolean).label("inserted")
    written = conn.execute(
        stmt.returning(
            a.c.id,
            a.c.kind,
            a.c.episode_key,
            a.c.state,
            a.c.level,
            a.c.grid_id,
            a.c.assignee_staff_id,
            a.c.summary,
            inserted,
        )
    ).mappings()
    episodes = {e.key: e for e in fresh}
    events: list[dict] = []
    raised: list[RaisedAlert] = []
    for row in written:
        episode = episodes[(row["kind"], row["episode_key"])]
        touched = {**row, "triggers": len(episode.triggers)}
        if row["inserted"]:
            events += _raise_events(actor, touched, episode, assignees[episode.key], now)
            announce_alert(conn, village, live.ALERT_RAISED, row, at=now)
        else:
            events += _retrigger_events(actor, [touched], episodes, "同一事件再次触发", now)
        raised.append(_raised(touched, new=row["inserted"]))
    conn.execute(alert_events.insert().values(events))
    return raised


def _raise_events(
    actor: Actor, alert: dict, episode: _Episode, assignee: dict | None, now: datetime
) -> list[dict]:
    """`raise`, then `assign` to the grid worker found (or the village takes it)."""
    note = episode.first.summary
    if len(episode.triggers) > 1:
        note += f"（{len(episode.triggers)}次）"
    if assignee is None:
        return [
            _event(
                actor,
                alert["id"],
                "raise",
                None,
                OPEN,
                now,
                level=VILLAGE,
                note=f"{note}；{NO_GRID_WORKER}",
            )
        ]
    return [
        _event(actor, alert["id"], "raise", None, OPEN, now, level=GRID, note=note),
        _event(
            actor,
            alert["id"],
            "assign",
            OPEN,
            ASSIGNED,
            now,
            level=GRID,
            staff_id=assignee["staff_id"],
            note=assignment_note(assignee),
        ),
    ]


# -- what the outbox, the open consoles and the audit log get ---------------------------------


def announce_alert(
    conn: Connection,
    village: str,
    kind: str,
    alert: Mapping[str, Any],
    *,
    note: str | None = None,
    previous_staff_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Tell the open consoles about `alert` (its row after the change) once committed."""
    live.announce(
        conn,
        village,
        kind,
        subject_type=ALERT,
        subject=alert,
        state=alert["state"],
        text=alert["summary"],
        shared=alert["kind"] in SHARED_KINDS,
        note=note,
        previous_staff_id=previous_staff_id,
        at=at,
    )


def share(conn: Connection, alert_ids: list[int]) -> None:
    """Fire and missing-person alerts go to the outbox (the linkage's alert
    broadcast to neighbouring villages, docs/linkage.md), in one statement for the lot. Neither ID
    numbers, phones nor health conditions: a missing person's name, gender and birth
    year are what a neighbour needs to recognise them."""
    if not alert_ids:
        return
    a, g, r = alerts, m.grids, m.residents
    rows = conn.execute(
        select(
            a.c.id,
            a.c.version,
            a.c.kind,
            a.c.severity,
            a.c.state,
            a.c.level,
            a.c.summary,
            a.c.location_text,
            a.c.latitude,
            a.c.longitude,
            g.c.code.label("grid"),
            r.c.name.label("resident_name"),
            r.c.gender.label("resident_gender"),
            func.extract("year", r.c.birth_date).cast(Integer).label("resident_birth_year"),
            a.c.raised_at,
            a.c.last_triggered_at,
            a.c.acknowledged_at,
            a.c.closed_at,
            a.c.outcome,
        )
        .outerjoin(g, g.c.id == a.c.grid_id)
        .outerjoin(r, r.c.id == a.c.resident_id)
        .where(a.c.id.in_(alert_ids), a.c.kind.in_(SHARED_KINDS))
        .order_by(a.c.id)
    ).mappings()
    emit_many(
        conn,
        ALERT,
        [
            (
                row["id"],
                {
                    k: v.isoformat() if isinstance(v, datetime) else v
                    for k, v in row.items()
                    if k != "version"
                },
                row["version"],
            )
            for row in rows
        ],
    )


def _audit_entry(actor: Actor, village: str, raised: RaisedAlert) -> dict[str, Any]:
    return entry(
        actor,
        village=village,
        action="alert.raise" if raised.new else "alert.retrigger",
        subject_type=ALERT,
        subject_id=raised.id,
        details={"kind": raised.kind, "triggers": raised.triggers},
    )
