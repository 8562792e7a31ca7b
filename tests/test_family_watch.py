"""家属健康: a wearer's consent, recorded in the village, that an emergency contact who is a
resident with an app account sees their latest readings and today's alerts in the
residents' app (`ResidentSelf.familyWatch`); granted and revoked by the village's health
staff, shown only while the record names the contact, audited on every read, and read
in a pinned number of statements however many wearers consented.

The cases share one populated village: each takes residents of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select

from villagelink.graphql.core.ids import encode_id
from villagelink.platform import models as pm
from villagelink.tenants import models as m
from villagelink.tenants.clock import day_start, today
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.health import actions
from villagelink.tenants.health.tables import latest_vitals, reading_consents
from villagelink.tenants.models import metadata
from villagelink.tenants.resident_accounts.actions import do_bind_resident_account
from villagelink.tenants.sensing.tables import alerts

from .test_activities import _table_of
from .test_health import ACTOR
from .test_query_count import count_statements

CONSENT_PAYLOAD = """healthRecord { readingConsents { contactName contactPhone recordedBy
  recordedAt } } userErrors { field message code }"""
GRANT = f"""mutation($input: ReadingConsentInput!) {{ grantReadingConsent(input: $input) {{
  {CONSENT_PAYLOAD} }} }}"""
REVOKE = f"""mutation($input: ReadingConsentInput!) {{ revokeReadingConsent(input: $input) {{
  {CONSENT_PAYLOAD} }} }}"""
WATCH = """{ me { resident { familyWatch { id name relation
  latestVitals { measuredAt heartRate spo2 systolic diastolic latitude longitude }
  alertsToday { kind state summary raisedAt closedAt outcome } } } } }"""


@pytest.fixture(scope="module")
def people(db, shared_village) -> dict:
    """Residents with phones of the shared village, by household, none bound yet."""
    r = m.residents
    with db.tenant(shared_village.slug) as conn:
        rows = conn.execute(
            select(r.c.id, r.c.name, r.c.phone)
            .where(r.c.phone.is_not(None), r.c.status == m.ACTIVE_RESIDENT)
            .order_by(r.c.id)
        ).all()
    # Unique phones only: a phone shared by two residents is its own case.
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.phone] = seen.get(row.phone, 0) + 1
    return iter([row for row in rows if seen[row.phone] == 1])


def bound(db, slug: str, person) -> str:
    """Bind an app account to `person`; its subject."""
    sub = f"fw-{uuid.uuid4().hex[:10]}"
    with db.tenant(slug) as conn:
        do_bind_resident_account(
            conn, ACTOR, slug, person.id, {"account": sub, "verification": "身份证原件核验"}
        )
    return sub


def wearer_naming(db, slug: str, wearer, *contacts) -> None:
    """A health record naming `contacts` (residents) as emergency contacts, as 儿子."""
    named = [{"name": c.name, "relation": "儿子", "phone": c.phone} for c in contacts]
    with db.tenant(slug) as conn:
        actions.do_create_health_record(
            conn, ACTOR, slug, wearer.id, {"emergency_contacts": named}, allowed_grids=None
        )


def alert(conn, resident_id: int, raised_at: datetime, **values) -> None:
    conn.execute(
        insert(alerts).values(
            **{
                "kind": "heart_rate_abnormal",
                "severity": "high",
                "episode_key": f"resident:{resident_id}:{uuid.uuid4().hex[:6]}",
                "resident_id": resident_id,
                "summary": "心率 134 次/分",
                "raised_at": raised_at,
                "last_triggered_at": raised_at,
                "ack_due_at": raised_at + timedelta(minutes=5),
                **values,
            }
        )
    )


def attempt(gql, who: str, document: str, slug: str, wearer, phone: str) -> tuple[int, dict]:
    resident = encode_id("Resident", slug, wearer.id)
    return gql(document, who, {"input": {"resident": resident, "contactPhone": phone}})


def consent(gql, who: str, document: str, slug: str, wearer, phone: str) -> dict:
    status, body = attempt(gql, who, document, slug, wearer, phone)
    assert status == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def errors(payload: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def watch(gql, who: str) -> list[dict]:
    status, body = gql(WATCH, who)
    assert status == 200 and "errors" not in body, body
    return body["data"]["me"]["resident"]["familyWatch"]


def test_a_consenting_wearer_is_watched_by_their_contact_only_while_it_holds(
    db, gql, token, shared_village, people
):
    slug = shared_village.slug
    wearer, son, neighbour, stranger = next(people), next(people), next(people), next(people)
    son_token = token("resident", village=slug, sub=bound(db, slug, son), username="儿子")
    stranger_token = token("resident", village=slug, sub=bound(db, slug, stranger))
    admin = token("village-admin", village=slug)
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    wearer_naming(db, slug, wearer, son, neighbour)
    now = datetime.now(UTC)
    start_of_day = day_start(today())
    with db.tenant(slug) as conn:
        conn.execute(
            insert(latest_vitals).values(
                resident_id=wearer.id,
                measured_at=now,
                heart_rate=134,
                heart_rate_at=now,
                spo2=95,
                spo2_at=now,
                systolic=150,
                diastolic=92,
                blood_pressure_at=now - timedelta(hours=1),
                latitude=39.1,
                longitude=117.2,
                location_at=now,
            )
        )
        # After the fall below even in the first ten minutes of the day.
        alert(
            conn, wearer.id, max(start_of_day + timedelta(seconds=2), now - timedelta(minutes=10))
        )
        alert(
            conn,
            wearer.id,
            start_of_day + timedelta(seconds=1),
            kind="fall",
            state="resolved",
            closed_at=now,
            outcome="已送医",
        )
        alert(conn, wearer.id, start_of_day - timedelta(seconds=1), kind="sos")  # yesterday

    # Nothing before the consent, even though the record names the son.
    assert watch(gql, son_token) == []

    # Refusals: a number the record does not name; a named neighbour with no app account.
    refused = consent(gql, admin, GRANT, slug, wearer, "13900000000")
    assert errors(refused) == [("contactPhone", "NOT_FOUND")] and refused["healthRecord"] is None
    no_account = consent(gql, admin, GRANT, slug, wearer, neighbour.phone)
    assert errors(no_account) == [("contactPhone", "NOT_FOUND")]
    assert "居民端账号" in no_account["userErrors"][0]["message"]
    # A resident may not grant it for someone else (the wearer gives their own word).
    _, body = attempt(gql, son_token, GRANT, slug, wearer, son.phone)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body

    # The grid worker records it at the door, on the wearer's word.
    granted = consent(gql, worker, GRANT, slug, wearer, son.phone)
    assert granted["userErrors"] == []
    (shown,) = granted["healthRecord"]["readingConsents"]
    assert shown["contactName"] == son.name and shown["contactPhone"] == son.phone
    assert shown["recordedBy"] and shown["recordedAt"]
    assert errors(consent(gql, admin, GRANT, slug, wearer, son.phone)) == [
        ("contactPhone", "DUPLICATE")
    ]

    (member,) = watch(gql, son_token)
    assert member["id"] == encode_id("Resident", slug, wearer.id)
    assert member["name"] == wearer.name and member["relation"] == "儿子"
    vitals = member["latestVitals"]
    assert (vitals["heartRate"], vitals["spo2"], vitals["systolic"], vitals["diastolic"]) == (
        134,
        95,
        150,
        92,
    )
    # Readings, not whereabouts.
    assert vitals["latitude"] is None and vitals["longitude"] is None
    # Today's alerts on the village's clock, newest first; yesterday's is not among them.
    assert [(a["kind"], a["state"], a["outcome"]) for a in member["alertsToday"]] == [
        ("HEART_RATE_ABNORMAL", "OPEN", None),
        ("FALL", "RESOLVED", "已送医"),
    ]
    assert watch(gql, stranger_token) == []

    log = pm.audit_log.c
    with db.platform() as conn:
        reads = conn.execute(
            select(log.fields).where(
                log.village == slug,
                log.action == "health_readings.read",
                log.subject_id == str(wearer.id),
                log.actor_sub.like("fw-%"),
            )
        ).all()
        granted_entries = conn.execute(
            select(log.action).where(
                log.village == slug,
                log.action.like("reading_consent.%"),
                log.subject_id == str(wearer.id),
            )
        ).scalars()
        assert list(granted_entries) == ["reading_consent.grant"]
    assert [sorted(r.fields) for r in reads] == [["alerts_today", "latest"]]

    # The record no longer names the son: the consent stays on record but shows nothing.
    with db.tenant(slug) as conn:
        named = [{"name": "李桂兰", "relation": "邻居", "phone": "022-23456789"}]
        actions.do_update_health_record(
            conn, ACTOR, slug, wearer.id, {"emergency_contacts": named}, allowed_grids=None
        )
    assert watch(gql, son_token) == []
    with db.tenant(slug) as conn:
        named = [{"name": son.name, "relation": "儿子", "phone": son.phone}]
        actions.do_update_health_record(
            conn, ACTOR, slug, wearer.id, {"emergency_contacts": named}, allowed_grids=None
        )
    assert len(watch(gql, son_token)) == 1

    revoked = consent(gql, admin, REVOKE, slug, wearer, son.phone)
    assert revoked["userErrors"] == [] and revoked["healthRecord"]["readingConsents"] == []
    assert watch(gql, son_token) == []
    assert errors(consent(gql, admin, REVOKE, slug, wearer, son.phone)) == [
        ("contactPhone", "NOT_FOUND")
    ]
    # Granted again after a revocation: a new consent, the old one kept.
    assert consent(gql, admin, GRANT, slug, wearer, son.phone)["userErrors"] == []
    assert len(watch(gql, son_token)) == 1


OWN_CONTACTS = """{ me { resident { emergencyContacts { name relation phone
  readingConsent { contactName recordedBy recordedAt } } } } }"""
OWN_PAYLOAD = "userErrors { field message code }"


def own_contacts(gql, who: str) -> list[dict]:
    status, body = gql(OWN_CONTACTS, who)
    assert status == 200 and "errors" not in body, body
    return body["data"]["me"]["resident"]["emergencyContacts"]


def test_the_wearer_grants_and_withdraws_consent_themselves(db, gql, token, shared_village, people):
    """In 我的家庭 the wearer sees their own emergency contacts and, acting as themselves,
    grants and withdraws 家属查看授权 through the same action as the village's staff:
    recorded with who and when, refused by field, audited."""
    slug = shared_village.slug
    wearer, daughter, neighbour = next(people), next(people), next(people)
    wearer_sub = bound(db, slug, wearer)
    wearer_token = token("resident", village=slug, sub=wearer_sub, username="本人")
    daughter_token = token("resident", village=slug, sub=bound(db, slug, daughter))
    assert own_contacts(gql, wearer_token) == []  # no record yet
    wearer_naming(db, slug, wearer, daughter, neighbour)
    assert own_contacts(gql, wearer_token) == [
        {"name": c.name, "relation": "儿子", "phone": c.phone, "readingConsent": None}
        for c in (daughter, neighbour)
    ]

    # Refused by field as for the staff: a contact without an app account, a number the
    # record does not name; and nobody else's record.
    no_account = consent(gql, wearer_token, GRANT, slug, wearer, neighbour.phone)
    assert errors(no_account) == [("contactPhone", "NOT_FOUND")]
    assert errors(consent(gql, wearer_token, GRANT, slug, wearer, "13900000000")) == [
        ("contactPhone", "NOT_FOUND")
    ]
    _, body = attempt(gql, wearer_token, GRANT, slug, daughter, wearer.phone)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body

    granted = consent(gql, wearer_token, GRANT, slug, wearer, daughter.phone)
    assert granted["userErrors"] == []
    given = own_contacts(gql, wearer_token)[0]["readingConsent"]
    assert given["contactName"] == daughter.name and given["recordedBy"] == "本人"
    assert datetime.fromisoformat(given["recordedAt"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert [w["name"] for w in watch(gql, daughter_token)] == [wearer.name]
    assert errors(consent(gql, wearer_token, GRANT, slug, wearer, daughter.phone)) == [
        ("contactPhone", "DUPLICATE")
    ]

    withdrawn = consent(gql, wearer_token, REVOKE, slug, wearer, daughter.phone)
    assert withdrawn["userErrors"] == []
    assert own_contacts(gql, wearer_token)[0]["readingConsent"] is None
    assert watch(gql, daughter_token) == []
    c = reading_consents.c
    with db.tenant(slug) as conn:
        kept = conn.execute(
            select(c.recorded_by, c.revoked_by, c.revoked_at).where(c.resident_id == wearer.id)
        ).one()
    assert kept.recorded_by == kept.revoked_by == "本人" and kept.revoked_at is not None
    log = pm.audit_log.c
    with db.platform() as conn:
        entries = conn.execute(
            select(log.action, log.actor_sub).where(
                log.village == slug,
                log.action.like("reading_consent.%"),
                log.subject_id == str(wearer.id),
            )
        ).all()
    assert sorted(e.action for e in entries) == ["reading_consent.grant", "reading_consent.revoke"]
    assert {e.actor_sub for e in entries} == {wearer_sub}


def test_consent_needs_a_record_and_a_village_that_is_the_callers(
    db, gql, token, shared_village, people
):
    slug = shared_village.slug
    wearer, son = next(people), next(people)
    bound(db, slug, son)
    admin = token("village-admin", village=slug)
    no_record = consent(gql, admin, GRANT, slug, wearer, son.phone)
    assert errors(no_record) == [("resident", "NOT_FOUND")]
    elsewhere = token("village-admin", village="liulin")
    _, body = attempt(gql, elsewhere, GRANT, slug, wearer, son.phone)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body


def test_family_watch_statement_count_is_pinned_and_flat(
    app, db, gql, token, shared_village, people
):
    slug = shared_village.slug
    son = next(people)
    son_token = token("resident", village=slug, sub=bound(db, slug, son))
    admin = token("village-admin", village=slug)
    now = datetime.now(UTC)

    def add_wearers(n: int) -> None:
        for _ in range(n):
            wearer = next(people)
            wearer_naming(db, slug, wearer, son)
            with db.tenant(slug) as conn:
                conn.execute(
                    insert(latest_vitals).values(
                        resident_id=wearer.id, measured_at=now, heart_rate=70
                    )
                )
                alert(conn, wearer.id, now - timedelta(seconds=1))
            assert consent(gql, admin, GRANT, slug, wearer, son.phone)["userErrors"] == []

    def run() -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            assert watch(gql, son_token)
        return statements

    add_wearers(1)
    run()  # warm the pool and the caller's kept reach
    one = run()
    add_wearers(4)
    five = run()
    # role, path and access epoch (the caller's reach is kept with the token), the
    # caller's record, the watched wearers with their vitals, today's alerts, the read audit
    assert len(one) == len(five) == 5, "\n".join(five)


def test_migration_creates_what_the_table_describes(db, shared_village):
    with db.tenant(shared_village.slug) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d for d in compare_metadata(context, metadata) if _table_of(d) == reading_consents.name
        ]
    assert differences == []
