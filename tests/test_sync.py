"""The sync between neighbours: outbox → exchange schema, against the real servers.

The first part calls the sync in-process, where each step can be looked at; the
second runs it as production does, in a real `rq worker` process fed by the
gateway's enqueue-after-commit, and kills it, flushes Redis and checks that
nothing is lost or duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import ProgrammingError

from villagelink.jobs import sync as sync_jobs
from villagelink.jobs.queues import SYNC
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.linkage import sync as linkage_sync
from villagelink.platform.linkage.catalogue import RECORD_TYPES
from villagelink.platform.linkage.sync import (
    DELETED_AT_ORIGIN,
    NOT_COVERED,
    reconcile_village,
    sync_village,
    villages_behind,
)
from villagelink.platform.linkage.tables import (
    REGION_AUDIENCE,
    agreements,
    cursors,
    log,
    records,
)
from villagelink.tenants import provisioning
from villagelink.tenants.outbox import DELETE, emit, emit_many, outbox
from villagelink.tenants.sensing.actions import do_acknowledge_alert
from villagelink.tenants.sensing.alerting import Trigger
from villagelink.tenants.sensing.queries import WHOLE_VILLAGE

from .conftest import TEST_REGION, agree, new_village, new_village_slug
from .processes import SyncWorker, wait_for
from .test_alerts import INGEST, NOW, Place

# What A lets B see of its alerts: no coordinates, no birth year.
B_FIELDS = ["kind", "state", "summary", "resident_name", "raised_at", "acknowledged_at"]


def acknowledge(conn, ring: Ring, alert_id: int) -> None:
    do_acknowledge_alert(
        conn, INGEST, ring.a.slug, alert_id, {"note": "已联系家属"}, scope=WHOLE_VILLAGE
    )


@dataclass
class Ring:
    """Village A (populated, with a radar on a resident) and four neighbours: A shares
    alerts with B (some fields) and E (all), not with C or D."""

    db: Database
    a: Place
    b: str
    c: str
    d: str
    e: str
    with_b: int
    with_e: int

    def missing_person(self, at: datetime = NOW) -> int:
        trigger = Trigger(
            "missing_person",
            f"resident:{self.a.resident}",
            at,
            "离开安全区域约 850 米",
            self.a.radar,
            self.a.resident,
            latitude=39.2,
            longitude=117.3,
        )
        [raised] = self.a.raise_([trigger], at)
        return raised.id

    def copies(self, record_type: str = "alert_broadcast") -> dict[tuple[int, str], dict]:
        """Every copy of A's records of that type, as the application role sees them."""
        r = records
        with self.db.platform() as conn:
            rows = conn.execute(
                select(r).where(r.c.origin == self.a.slug, r.c.record_type == record_type)
            ).mappings()
            return {(row["origin_id"], row["audience"]): dict(row) for row in rows}

    def log(self) -> list[tuple]:
        with self.db.platform() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    select(log.c.action, log.c.audience, log.c.origin_id, log.c.version)
                    .where(log.c.origin == self.a.slug)
                    .order_by(log.c.id)
                )
            ]


@pytest.fixture(scope="module")
def neighbours(db: Database) -> list[str]:
    """B, C, D and E for every ring of the module: each test's A is fresh, and with it
    its agreements, outbox, cursor and copies; the neighbours only receive, and a test
    reads the exchange by its own A (`Ring.copies`, `Ring.log`)."""
    return [new_village(db, f"邻村{n}").slug for n in "BCDE"]


@pytest.fixture
def ring(db: Database, populated_village, neighbours: list[str]) -> Ring:
    return _ring(db, populated_village, neighbours)


@pytest.fixture
def ring_of_its_own(db: Database, populated_village) -> Ring:
    """A ring whose neighbours are fresh too, for a test that reads everything a
    neighbour sees: the module's neighbours hold other tests' copies and log rows."""
    return _ring(db, populated_village, [new_village(db, f"邻村{n}").slug for n in "BCDE"])


def _ring(db: Database, village: provisioning.Village, neighbours: list[str]) -> Ring:
    b, c, d, e = neighbours
    a = Place(db, village.slug)
    everything = list(RECORD_TYPES["alert_broadcast"].fields)
    return Ring(
        db,
        a,
        b,
        c,
        d,
        e,
        with_b=agree(db, a.slug, b, {"alert_broadcast": B_FIELDS}),
        with_e=agree(db, a.slug, e, {"alert_broadcast": everything}),
    )


# -- in-process ---------------------------------------------------------------------------


def test_a_reconcile_of_more_copies_than_one_statement_takes(ring, monkeypatch):
    """A reconcile writes and withdraws a village's copies in statements of
    STATEMENT_ROWS rows (one of 30,000 failed on PostgreSQL's 65,535 parameters); here
    with three a statement, over seven records to two neighbours."""
    db, a = ring.db, ring.a.slug
    monkeypatch.setattr(linkage_sync, "STATEMENT_ROWS", 3)
    agree(db, a, ring.b, {"open_activity": ["title", "kind"]})
    with_c = agree(db, a, ring.c, {"open_activity": ["title"]})
    _open_activities(db, a, 7)
    assert reconcile_village(db, a).published == 14
    assert len(ring.copies("open_activity")) == 14
    with db.platform() as conn:
        conn.execute(update(agreements).where(agreements.c.id == with_c).values(state="revoked"))
    assert reconcile_village(db, a).withdrawn == 7
    assert {audience for _, audience in ring.copies("open_activity")} == {ring.b}
    logged = [row for row in ring.log() if row[0] == "publish" and row[1] == ring.c]
    assert len(logged) == 7


def test_a_missing_person_reaches_the_agreed_neighbours_with_their_fields_only(ring):
    alert_id = ring.missing_person()
    result = sync_village(ring.db, ring.a.slug)
    assert (result.published, result.withdrawn) == (2, 0)

    copies = ring.copies()
    assert set(copies) == {(alert_id, ring.b), (alert_id, ring.e)}
    to_b, to_e = copies[(alert_id, ring.b)], copies[(alert_id, ring.e)]
    # The stored row holds the allow-listed fields and nothing else.
    assert set(to_b["payload"]) == set(B_FIELDS)
    assert "latitude" not in to_b["payload"] and "resident_birth_year" not in to_b["payload"]
    assert to_e["payload"]["latitude"] == 39.2 and to_e["payload"]["resident_birth_year"]
    assert to_b["agreement_ids"] == [ring.with_b] and to_e["agreement_ids"] == [ring.with_e]
    assert to_b["version"] == to_e["version"] == 1
    assert to_b["region_id"] == TEST_REGION
    assert sorted(ring.log()) == sorted(
        [("publish", ring.b, alert_id, 1), ("publish", ring.e, alert_id, 1)]
    )


def test_a_field_outside_every_allow_list_never_reaches_the_exchange(ring):
    ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    with ring.db.platform() as conn:
        keys = conn.execute(
            text(
                "SELECT DISTINCT jsonb_object_keys(payload) FROM exchange.records "
                "WHERE origin = :a AND audience = :b"
            ),
            {"a": ring.a.slug, "b": ring.b},
        ).scalars()
        assert set(keys) <= set(B_FIELDS)
        # Not even inside a value: the excluded coordinates appear nowhere in B's copy.
        leaked = conn.execute(
            text(
                "SELECT count(*) FROM exchange.records WHERE origin = :a AND audience = :b "
                "AND (payload::text LIKE '%39.2%' OR payload::text LIKE '%_audience%')"
            ),
            {"a": ring.a.slug, "b": ring.b},
        ).scalar_one()
        assert leaked == 0


def test_an_edit_arrives_as_a_new_version_and_a_duplicate_changes_nothing(ring):
    alert_id = ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    with ring.db.tenant(ring.a.slug) as conn:
        acknowledge(conn, ring, alert_id)
    assert sync_village(ring.db, ring.a.slug).published == 2
    copies = ring.copies()
    assert {copy["version"] for copy in copies.values()} == {2}
    assert copies[(alert_id, ring.b)]["payload"]["state"] == "acknowledged"
    before = ring.log()

    # The same changes delivered again (a job run twice, a cursor reset): no copy is
    # rewritten, no log row is added.
    assert sync_village(ring.db, ring.a.slug).published == 0
    with ring.db.platform() as conn:
        conn.execute(
            update(cursors)
            .where(cursors.c.village == ring.a.slug)
            .values(outbox_xid=0, outbox_id=0)
        )
    again = sync_village(ring.db, ring.a.slug)
    assert (again.read, again.published, again.withdrawn) == (2, 0, 0)
    assert ring.log() == before
    assert ring.copies() == copies


def test_an_older_version_never_replaces_a_newer_one(ring):
    alert_id = ring.missing_person()
    with ring.db.tenant(ring.a.slug) as conn:
        acknowledge(conn, ring, alert_id)
    sync_village(ring.db, ring.a.slug)
    # Version 1 arriving after version 2 (reordered delivery) is ignored.
    with ring.db.tenant(ring.a.slug) as conn:
        first = (
            conn.execute(
                select(outbox.c.payload).where(outbox.c.record_id == alert_id).order_by(outbox.c.id)
            )
            .scalars()
            .first()
        )
        emit(conn, "Alert", alert_id, first, version=1)
    assert sync_village(ring.db, ring.a.slug).published == 0
    assert {copy["version"] for copy in ring.copies().values()} == {2}


def test_revoking_withdraws_the_copies_and_logs_it(ring):
    alert_id = ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    with ring.db.platform() as conn:
        conn.execute(
            update(agreements).where(agreements.c.id == ring.with_b).values(state="revoked")
        )
    result = reconcile_village(ring.db, ring.a.slug)
    assert (result.published, result.withdrawn) == (0, 1)
    assert sorted(ring.copies()) == [(alert_id, ring.e)]
    with ring.db.platform() as conn:
        withdrawal = conn.execute(
            select(log.c.action, log.c.reason, log.c.agreement_ids).where(
                log.c.origin == ring.a.slug, log.c.audience == ring.b, log.c.action == "withdraw"
            )
        ).one()
    assert tuple(withdrawal) == ("withdraw", NOT_COVERED, [ring.with_b])

    # A newly accepted agreement gets what is already there (reconcile publishes it).
    agree(ring.db, ring.a.slug, ring.c, {"alert_broadcast": ["kind", "state"]})
    assert reconcile_village(ring.db, ring.a.slug).published == 1
    assert ring.copies()[(alert_id, ring.c)]["payload"] == {
        "kind": "missing_person",
        "state": "assigned",
    }


def test_a_record_deleted_at_the_origin_is_withdrawn(ring):
    alert_id = ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    with ring.db.tenant(ring.a.slug) as conn:
        emit(conn, "Alert", alert_id, {}, version=2, operation=DELETE)
    assert sync_village(ring.db, ring.a.slug).withdrawn == 2
    assert ring.copies() == {}
    reasons = {row for row in ring.log() if row[0] == "withdraw"}
    assert reasons == {("withdraw", ring.b, alert_id, 2), ("withdraw", ring.e, alert_id, 2)}
    with ring.db.platform() as conn:
        assert set(
            conn.execute(
                select(log.c.reason).where(log.c.origin == ring.a.slug, log.c.action == "withdraw")
            ).scalars()
        ) == {DELETED_AT_ORIGIN}


def test_row_level_security_shows_each_village_its_own_share_only(ring_of_its_own, db):
    ring = ring_of_its_own
    alert_id = ring.missing_person()
    sync_village(db, ring.a.slug)

    def visible(slug: str, where: str = "") -> list[tuple]:
        with db.tenant(slug) as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    text(f"SELECT origin, audience FROM exchange.records {where}")
                )
            ]

    assert visible(ring.b) == [(ring.a.slug, ring.b)]
    # A direct cross read, naming the other audience, finds nothing.
    assert visible(ring.b, f"WHERE audience = '{ring.e}'") == []
    assert visible(ring.c) == [] and visible(ring.d) == []
    # The origin sees what it published, to everyone.
    assert set(visible(ring.a.slug)) == {(ring.a.slug, ring.b), (ring.a.slug, ring.e)}
    with db.tenant(ring.c) as conn:
        assert conn.execute(text("SELECT count(*) FROM exchange.log")).scalar_one() == 0
        # Only the sync writes there.
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(
                text(
                    "INSERT INTO exchange.records VALUES "
                    "(:a, 'alert_broadcast', 1, :c, :r, '{}', 1, '{}', 'x', now(), now())"
                ),
                {"a": ring.a.slug, "c": ring.c, "r": TEST_REGION},
            )

    # A region's coordinators see their region's copies; another region's see none.
    other = f"r{new_village_slug()}"
    provisioning.ensure_region(db, other, "别的片区")
    with db.region(other) as conn:
        assert conn.execute(text("SELECT count(*) FROM exchange.records")).scalar_one() == 0
    with db.region(TEST_REGION) as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM exchange.records WHERE origin_id = :id AND origin = :a"),
                {"id": alert_id, "a": ring.a.slug},
            ).scalar_one()
            == 2
        )
        # The region role reads no village schema.
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text(f'SELECT count(*) FROM "vl_t_{ring.a.slug}".residents'))


def test_stats_and_joint_cases_go_to_the_region_whatever_the_agreements(ring):
    with ring.db.tenant(ring.a.slug) as conn:
        emit(conn, "VillageStats", 1, {"residents": 60, "_audience": []}, version=1)
        emit(conn, "JointCase", 7, {"title": "跨村道路积水", "_audience": [ring.b]}, version=1)
    sync_village(ring.db, ring.a.slug)
    assert sorted(ring.copies("village_stats")) == [(1, REGION_AUDIENCE)]
    # Named for B, but no agreement covers joint cases with B: the region only.
    assert sorted(ring.copies("joint_case")) == [(7, REGION_AUDIENCE)]
    assert ring.copies("joint_case")[(7, REGION_AUDIENCE)]["payload"] == {"title": "跨村道路积水"}


@pytest.fixture
def short_timeout_db(settings) -> Iterator[Database]:
    """The run's database with a short statement timeout: a transaction held past it is
    held past every timeout in force, without holding the run for the default's 5 s."""
    database = Database(settings.database_direct_url, statement_timeout_ms=1000)
    yield database
    database.dispose()


def test_a_transaction_that_commits_late_is_published_however_long_it_ran(ring, short_timeout_db):
    """Outbox ids are taken at insert: a transaction that took a lower id and commits
    long after higher ones (longer than any statement timeout, while other changes are
    made and the sync runs again and again) is published when it commits, once."""
    db = short_timeout_db
    a = ring.a.slug
    alert = {"kind": "fire", "state": "open"}
    slow = db.begin_tenant(a)
    later = []
    try:
        emit(slow, "Alert", 900001, alert, version=1)
        held_until = time.monotonic() + db.statement_timeout_ms / 1000 + 1
        while time.monotonic() < held_until or len(later) < 3:
            with db.tenant(a) as conn:
                later.append(900002 + len(later))
                emit(conn, "Alert", later[-1], alert, version=1)
            behind_it = sync_village(db, a)
            # Committed, but newer than a transaction still running: they wait for it.
            assert (behind_it.published, behind_it.waiting) == (0, True)
            assert a in villages_behind(db)
            # The hold is a length of time, not a wait for something: rounds spun back to
            # back (each reads every village's outbox) only burned the CPU other tests need.
            time.sleep(0.2)
        slow.commit()
    finally:
        slow.close()
    caught_up = sync_village(db, a)
    assert (caught_up.published, caught_up.waiting) == (2 * (1 + len(later)), False)
    assert sorted({key[0] for key in ring.copies()}) == [900001, *later]
    published = [(row[1], row[2]) for row in ring.log() if row[0] == "publish"]
    assert sorted(published) == sorted(
        (audience, origin_id) for origin_id in [900001, *later] for audience in (ring.b, ring.e)
    )  # each copy logged once
    assert a not in villages_behind(db)
    with db.platform() as conn:
        state = conn.execute(select(cursors).where(cursors.c.village == a)).one()
    assert state.waiting_since is None


def test_the_sweep_finds_the_villages_behind(ring, job_env, redis_client):
    ring.missing_person()
    behind = sync_jobs.sweep()
    assert ring.a.slug in behind
    from rq import Queue

    queued = Queue(SYNC, connection=redis_client).jobs
    assert f"sync: {ring.a.slug}" in [job.description for job in queued]
    sync_village(ring.db, ring.a.slug)
    assert ring.a.slug not in villages_behind(ring.db)


def test_the_sweep_reads_the_outboxes_a_batch_per_transaction(ring, monkeypatch):
    """One transaction for every village's outbox ran out of lock slots at 10,000
    villages: batches of one find what one batch of all finds."""
    ring.missing_person()
    whole = villages_behind(ring.db)
    assert ring.a.slug in whole
    with ring.db.platform() as conn:
        active = conn.execute(
            select(func.count()).where(pm.tenants.c.status == "active")
        ).scalar_one()
    transactions = []
    platform = ring.db.platform

    def counted():
        transactions.append(1)
        return platform()

    monkeypatch.setattr(linkage_sync, "SWEEP_BATCH", 1)
    monkeypatch.setattr(ring.db, "platform", counted)
    assert villages_behind(ring.db) == whole
    # The villages and their cursors, then one transaction per active village.
    assert len(transactions) == 1 + active


# -- a real `rq worker` process -------------------------------------------------------------


@pytest.fixture
def sync_worker(job_env, tmp_path) -> Iterator[SyncWorker]:
    worker = SyncWorker(job_env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


ACKNOWLEDGE = """
mutation Ack($input: AcknowledgeAlertInput!) {
  acknowledgeAlert(input: $input) { alert { state } userErrors { code message } }
}
"""


@pytest.mark.worker_process
def test_through_the_gateway_and_a_worker_the_neighbours_see_it_within_seconds(
    ring, sync_worker, gql, token
):
    from villagelink.graphql.core.ids import encode_id
    from villagelink.jobs.sync import enqueue_sync

    alert_id = ring.missing_person()
    enqueue_sync(sync_worker.settings, [ring.a.slug])  # as ingest's request does on commit
    wait_for(lambda: len(ring.copies()) == 2, 15, "the alert never reached B and E", sync_worker)
    assert set(ring.copies()) == {(alert_id, ring.b), (alert_id, ring.e)}

    # An edit through the API: the gateway enqueues the sync after its commit.
    started = time.monotonic()
    status, body = gql(
        ACKNOWLEDGE,
        token("village-admin", village=ring.a.slug),
        {"input": {"id": encode_id("Alert", ring.a.slug, alert_id), "note": "已联系家属"}},
    )
    assert status == 200 and body["data"]["acknowledgeAlert"]["userErrors"] == [], body
    wait_for(
        lambda: {c["version"] for c in ring.copies().values()} == {2},
        15,
        "the new version never arrived",
        sync_worker,
    )
    print(f"acknowledged → both neighbours' copies: {time.monotonic() - started:.2f} s")
    copies = ring.copies()
    assert copies[(alert_id, ring.b)]["payload"]["state"] == "acknowledged"
    assert all(audience != ring.c for _, audience in copies)
    with ring.db.platform() as conn:
        lags = (
            conn.execute(
                select(log.c.lag_ms).where(log.c.origin == ring.a.slug, log.c.version == 2)
            )
            .scalars()
            .all()
        )
    assert len(lags) == 2 and all(lag is not None and lag < 15000 for lag in lags)


def _open_activities(db: Database, slug: str, count: int) -> int:
    """`count` shared activities written straight to the outbox in one transaction;
    returns the outbox's last id."""
    with db.tenant(slug) as conn:
        emit_many(
            conn,
            "Activity",
            [
                (n, {"title": f"开放活动 {n}", "kind": "volunteer", "state": "published"}, 1)
                for n in range(1, count + 1)
            ],
        )
        return conn.execute(select(func.max(outbox.c.id))).scalar_one()


def _cursor(db: Database, slug: str) -> int:
    with db.platform() as conn:
        return (
            conn.execute(select(cursors.c.outbox_id).where(cursors.c.village == slug)).scalar() or 0
        )


@pytest.mark.worker_process
def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(ring, sync_worker):
    db, a = ring.db, ring.a.slug
    agree(db, a, ring.b, {"open_activity": ["title", "kind"]})
    count = 30000
    last = _open_activities(db, a, count)
    first = _cursor(db, a)
    sync_jobs.enqueue_sync(sync_worker.settings, [a])

    # Kill it once it has committed some batches and not all.
    wait_for(lambda: _cursor(db, a) > first, 60, "the sync never started", sync_worker)
    sync_worker.kill()
    reached = _cursor(db, a)
    assert first < reached < last, "the job finished before the kill: make it longer"

    def published() -> list[tuple]:
        with db.platform() as conn:
            return conn.execute(
                select(log.c.origin_id, func.count())
                .where(log.c.origin == a, log.c.record_type == "open_activity")
                .group_by(log.c.origin_id)
            ).all()

    # What was committed before the kill is consistent: every copy has its log row.
    half = published()
    assert all(n == 1 for _, n in half)
    assert len(half) == len(ring.copies("open_activity")) < count

    # Restarted, and with the lost job found again by the sweep.
    sync_worker.start()
    sync_jobs.sweep()
    wait_for(lambda: _cursor(db, a) == last, 120, "the sync never caught up", sync_worker)
    done = published()
    assert len(done) == count and all(n == 1 for _, n in done)
    copies = ring.copies("open_activity")
    assert len(copies) == count
    assert {c["payload"]["title"] for c in copies.values()} == {
        f"开放活动 {n}" for n in range(1, count + 1)
    }
    # The sweep asked for A's reconcile too, over all 30,000 copies: not waited for here
    # (tens of seconds; test_a_reconcile_of_more_copies_than_one_statement_takes checks
    # it), so it goes the way this test's worker went, rather than hold up the stop.
    sync_worker.kill()


@pytest.mark.worker_process
def test_after_redis_is_flushed_the_sweep_rebuilds_everything_from_the_outbox(
    ring, sync_worker, redis_client
):
    db, a = ring.db, ring.a.slug
    first = ring.missing_person()
    sync_jobs.enqueue_sync(sync_worker.settings, [a])
    wait_for(lambda: len(ring.copies()) == 2, 15, "first sync", sync_worker)
    before = ring.copies()

    # The worker is gone, a change waits in Redis, and Redis loses everything.
    sync_worker.kill()
    with db.tenant(a) as conn:
        acknowledge(conn, ring, first)
    sync_jobs.enqueue_sync(sync_worker.settings, [a])
    redis_client.flushall()
    # And the exchange loses A's copies and cursor too: only the outbox is left.
    with db.platform() as conn:
        conn.execute(records.delete().where(records.c.origin == a))
        conn.execute(cursors.delete().where(cursors.c.village == a))

    sync_worker.start()
    assert a in sync_jobs.sweep()
    wait_for(
        lambda: {c["version"] for c in ring.copies().values()} == {2} and len(ring.copies()) == 2,
        # The sweep enqueues every village behind, other tests' villages too.
        120,
        "the sweep did not rebuild A's copies",
        sync_worker,
    )
    after = ring.copies()
    assert sorted(after) == sorted(before)
    assert after[(first, ring.b)]["payload"]["state"] == "acknowledged"
    assert set(after[(first, ring.b)]["payload"]) == set(B_FIELDS)


def test_metrics_export_the_sync_lag(ring, client):
    ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    text_ = client.get("/metrics").get_data(as_text=True)
    assert 'villagelink_sync_lag_seconds{quantile="0.95"}' in text_
    published = [
        line for line in text_.splitlines() if line.startswith("villagelink_sync_published_recent")
    ]
    assert published and float(published[0].split()[-1]) >= 2


SYNC_STATUS = """
query Sync($slug: String!) {
  village(slug: $slug) { sync { outboxPosition failing lastError attempts waitingSince } }
}
"""


def test_a_village_admin_sees_the_sync_of_the_village(ring, gql, token, db, village):
    ring.missing_person()
    result = sync_village(db, ring.a.slug)
    status, body = gql(
        SYNC_STATUS, token("village-admin", village=ring.a.slug), {"slug": ring.a.slug}
    )
    assert status == 200, body
    assert body["data"]["village"]["sync"] == {
        "outboxPosition": result.cursor,
        "failing": False,
        "lastError": None,
        "attempts": 0,
        "waitingSince": None,
    }
    # A village that never synced (a fresh one, not a neighbour of the module's) has no
    # cursor yet.
    status, body = gql(
        SYNC_STATUS, token("village-admin", village=village.slug), {"slug": village.slug}
    )
    assert body["data"]["village"]["sync"] is None
    status, body = gql(
        SYNC_STATUS, token("grid-worker", village=ring.a.slug), {"slug": ring.a.slug}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_sweep_withdraws_what_a_lost_reconcile_left_behind(ring, job_env, redis_client):
    from rq import Queue

    from villagelink.platform.linkage.sync import villages_to_reconcile

    alert_id = ring.missing_person()
    sync_village(ring.db, ring.a.slug)
    with ring.db.platform() as conn:
        # Long enough ago not to count as a recent change.
        conn.execute(
            update(agreements)
            .where(agreements.c.id.in_([ring.with_b, ring.with_e]))
            .values(updated_at=func.now() - timedelta(hours=1))
        )
    assert ring.a.slug not in villages_to_reconcile(ring.db)
    with ring.db.platform() as conn:
        # Revoked without its reconcile job (as if Redis had lost it).
        conn.execute(
            update(agreements)
            .where(agreements.c.id == ring.with_b)
            .values(state="revoked", updated_at=func.now() - timedelta(hours=1))
        )
    assert ring.a.slug in villages_to_reconcile(ring.db)
    sync_jobs.sweep()
    queued = [job.description for job in Queue(SYNC, connection=redis_client).jobs]
    assert f"reconcile: {ring.a.slug}" in queued
    reconcile_village(ring.db, ring.a.slug)
    assert sorted(ring.copies()) == [(alert_id, ring.e)]
    assert ring.a.slug not in villages_to_reconcile(ring.db)


def test_a_transaction_that_emits_is_marked_for_the_sync_once(db, village):
    from villagelink.tenants.outbox import wrote_outbox

    with db.tenant(village.slug) as conn:
        assert not wrote_outbox(conn)
        emit(conn, "Activity", 1, {"title": "开放活动"}, version=1)
        assert wrote_outbox(conn)
        assert not wrote_outbox(conn)  # asked once: the mark goes with the pooled connection
        emit_many(conn, "Activity", [(2, {"title": "开放活动"}, 1)])
        assert wrote_outbox(conn)


def test_a_delayed_look_again_leaves_a_commit_s_own_sync_free_to_go_at_once(job_env, redis_client):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    slug = "sync_marks"
    pending = sync_jobs.PENDING_KEY.format(slug)
    # A sync found changes behind a running transaction and looks again in a second:
    sync_jobs.enqueue_sync(job_env, [slug], delay=sync_jobs.WAITING_RECHECK)
    assert len(ScheduledJobRegistry(SYNC, connection=redis_client)) == 1
    assert not redis_client.exists(pending)
    # so that transaction's commit is synced at once, not after the look again;
    sync_jobs.enqueue_sync(job_env, [slug])
    assert redis_client.exists(pending) and Queue(SYNC, connection=redis_client).count == 1
    # and commits meanwhile add nothing to the job that waits.
    sync_jobs.enqueue_sync(job_env, [slug])
    assert Queue(SYNC, connection=redis_client).count == 1
