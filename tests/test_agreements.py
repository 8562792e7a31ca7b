"""Data-sharing agreements and the exchange log (docs/agreements.md), through GraphQL against
the real servers. A test works in a region of three villages: A borders B, B borders
C, A and C do not border each other. Cases that list or count what the region holds, or
leave an agreement open or in force, get a region of their own; the cases of the
`InTheSharedArea` classes share one per module."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from rq import Queue
from sqlalchemy import insert, select, text, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs import agreements as agreement_jobs
from villagelink.jobs.queues import SYNC
from villagelink.platform import models as pm
from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database
from villagelink.platform.linkage import policy
from villagelink.platform.linkage.agreements import (
    do_accept_agreement,
    do_propose_agreement,
    do_revoke_agreement,
    expire_due,
    seed_demo_agreements,
)
from villagelink.platform.linkage.catalogue import RECORD_TYPES
from villagelink.platform.linkage.sync import reconcile_village, sync_village
from villagelink.platform.linkage.tables import (
    agreement_events,
    agreements,
    exchange_metadata,
)
from villagelink.platform.linkage.tables import log as exchange_log
from villagelink.tenants import provisioning
from villagelink.tenants.outbox import emit

from .conftest import new_village
from .test_query_count import count_statements

AGREEMENT = """id state scope inForce regionId purpose validFrom validUntil
  proposer { slug name } recordTypes { type label fields }
  parties { village name state decidedAt }
  history { action village actorName details }"""
ERRORS = "userErrors { field message code }"
PROPOSE = f"""mutation($input: ProposeAgreementInput!) {{ proposeAgreement(input: $input) {{
  agreement {{ {AGREEMENT} }} {ERRORS} }} }}"""
ACCEPT = f"""mutation($input: AnswerAgreementInput!) {{ acceptAgreement(input: $input) {{
  agreement {{ {AGREEMENT} }} {ERRORS} }} }}"""
DECLINE = f"""mutation($input: AnswerAgreementInput!) {{ declineAgreement(input: $input) {{
  agreement {{ {AGREEMENT} }} {ERRORS} }} }}"""
REVOKE = f"""mutation($input: RevokeAgreementInput!) {{ revokeAgreement(input: $input) {{
  agreement {{ {AGREEMENT} }} {ERRORS} }} }}"""
VILLAGE_AGREEMENTS = f"""query($slug: String!, $state: AgreementState) {{ village(slug: $slug) {{
  agreements(state: $state) {{ {AGREEMENT} }} }} }}"""
REGION_AGREEMENTS = """query($slug: String!) { village(slug: $slug) { region { id
  agreements { id proposer { slug } state } } } }"""
EXCHANGE_LOG = """query($slug: String!, $direction: ExchangeDirection, $first: Int,
  $after: String) { village(slug: $slug) {
  exchangeLog(direction: $direction, first: $first, after: $after) { totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id action origin audience originName audienceName recordType originId
      version agreementIds
      payloadHash reason occurredAt lagMs } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { id ... on Agreement { state } } }"""

ALERT_FIELDS = ["kind", "state", "summary", "raised_at"]
ALERTS = [{"type": "alert_broadcast", "fields": ALERT_FIELDS}]


@dataclass
class Area:
    region: str
    a: str
    b: str
    c: str


def new_area(db: Database) -> Area:
    """Three villages of a region of their own, A–B and B–C neighbours."""
    region = f"ag_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region, "协议测试片区")
    a, b, c = (new_village(db, name, region).slug for name in ("甲村", "乙村", "丙村"))
    with db.platform() as conn:
        conn.execute(
            insert(pm.neighbour_links),
            [
                dict(zip(("village_a", "village_b"), sorted(p), strict=True))
                for p in ((a, b), (b, c))
            ],
        )
    return Area(region, a, b, c)


@pytest.fixture
def area(db: Database) -> Area:
    """An area of the case's own (the `InTheSharedArea` classes' cases get the shared one)."""
    return new_area(db)


@pytest.fixture(scope="module")
def shared_area(db: Database) -> Area:
    return new_area(db)


class InTheSharedArea:
    """Cases that share the module's area: each reads only its own agreement (by its id:
    its parties, history, audit entries, log entry) and leaves no alert agreement open or
    in force, so the flows, duplicates and parties the next one checks are a fresh area's.
    A case that lists or counts the area's agreements or log stays out."""

    @pytest.fixture
    def area(self, shared_area: Area) -> Area:
        return shared_area


@pytest.fixture(scope="module")
def untouched_area(db: Database) -> Area:
    """An area for the refused proposals: each case checks that it wrote nothing, so
    they share one instead of provisioning three villages per case."""
    return new_area(db)


@pytest.fixture
def admins(token, area):
    """Each village's admin token, by slug."""
    return {slug: token("village-admin", village=slug) for slug in (area.a, area.b, area.c)}


def call(gql, document: str, caller: str, **input) -> dict:
    status, body = gql(document, caller, {"input": input})
    assert status == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def error_code(gql, document: str, caller: str, variables: dict) -> str:
    _status, body = gql(document, caller, variables)
    assert "errors" in body, body
    return body["errors"][0]["extensions"]["code"]


def codes(payload: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def propose(gql, admins, village: str, **input) -> dict:
    input.setdefault("recordTypes", ALERTS)
    input.setdefault("purpose", "互通走失警情")
    done = call(gql, PROPOSE, admins[village], village=village, **input)
    assert done["userErrors"] == [], done
    return done["agreement"]


def answer(gql, admins, document: str, agreement: dict, village: str, **extra) -> dict:
    return call(gql, document, admins[village], agreement=agreement["id"], village=village, **extra)


def parties(agreement: dict) -> dict[str, str]:
    return {p["village"]: p["state"] for p in agreement["parties"]}


def actions_of(agreement: dict) -> list[tuple[str, str | None]]:
    return [(e["action"], e["village"]) for e in agreement["history"]]


def audit_actions(db: Database, agreement: dict) -> list[tuple[str, str]]:
    key = decode_id(agreement["id"]).key
    log = pm.audit_log
    with db.platform() as conn:
        rows = conn.execute(
            select(log.c.action, log.c.village)
            .where(log.c.subject_type == "Agreement", log.c.subject_id == key)
            # One transaction per step; the ids are random.
            .order_by(log.c.occurred_at, log.c.village)
        ).all()
    return [tuple(r) for r in rows]


def reconciles(queue: Queue) -> set[str]:
    """The villages a reconcile job is waiting for."""
    return {
        job.description.split(": ", 1)[1]
        for job in queue.get_jobs()
        if job.description.startswith("reconcile: ")
    }


def flows(db: Database, village: str) -> set[str]:
    """Who receives `village`'s alerts now."""
    with db.platform() as conn:
        grants = policy.audiences(conn, village).get("alert_broadcast", {})
    return {audience for audience, grant in grants.items() if grant.agreement_ids}


@pytest.fixture
def sync_queue(redis_client):
    queue = Queue(SYNC, connection=redis_client)
    queue.empty()
    return queue


# -- the record types -------------------------------------------------------------


def test_the_form_lists_the_catalogue(gql, token):
    status, body = gql(
        "{ linkageRecordTypes { type label fields agreeable fieldLabels { field label } } }",
        token("platform-admin"),
    )
    assert status == 200, body
    listed = {t["type"]: t for t in body["data"]["linkageRecordTypes"]}
    assert set(listed) == set(RECORD_TYPES)
    # The proposal form offers the agreeable ones; the exchange log labels them all.
    assert [t for t, v in listed.items() if not v["agreeable"]] == ["escalated_request"]
    assert listed["alert_broadcast"]["label"] == "火情与走失警情"
    assert listed["village_stats"]["fields"] == list(RECORD_TYPES["village_stats"].fields)
    # Every field has its Chinese name for the proposal form's field picker, in order.
    for record_type in listed.values():
        labels = record_type["fieldLabels"]
        assert [entry["field"] for entry in labels] == record_type["fields"]
        assert all(re.search(r"[\u4e00-\u9fff]", entry["label"]) for entry in labels), labels
    alert_fields = {e["field"]: e["label"] for e in listed["alert_broadcast"]["fieldLabels"]}
    assert alert_fields["resident_name"] == "当事人姓名"


# -- neighbour agreements -----------------------------------------------------------


class TestNeighbourAgreements(InTheSharedArea):
    """Each case closes the agreement it opens."""

    def test_a_neighbour_agreement_is_proposed_accepted_and_revoked(
        self, db, gql, area, admins, settings, sync_queue
    ):
        until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        proposed = propose(gql, admins, area.a, counterpart=area.b, validUntil=until)
        assert proposed["state"] == "PROPOSED" and proposed["scope"] == "NEIGHBOUR"
        assert proposed["inForce"] is False and proposed["regionId"] == area.region
        assert proposed["proposer"] == {"slug": area.a, "name": "甲村"}
        assert proposed["recordTypes"] == [
            {"type": "alert_broadcast", "label": "火情与走失警情", "fields": sorted(ALERT_FIELDS)}
        ]
        assert parties(proposed) == {area.a: "ACCEPTED", area.b: "PENDING"}
        assert proposed["parties"][0]["village"] == area.a  # the proposer first
        assert flows(db, area.a) == set()
        assert reconciles(sync_queue) == set()  # nothing moves yet

        accepted = answer(gql, admins, ACCEPT, proposed, area.b)
        assert accepted["userErrors"] == []
        agreement = accepted["agreement"]
        assert agreement["state"] == "ACTIVE" and agreement["inForce"] is True
        assert parties(agreement) == {area.a: "ACCEPTED", area.b: "ACCEPTED"}
        assert decode_id(agreement["id"]).village == area.b  # as the acting village sees it
        assert flows(db, area.a) == {area.b} and flows(db, area.b) == {area.a}
        assert reconciles(sync_queue) == {area.a, area.b}
        sync_queue.empty()

        again = answer(gql, admins, ACCEPT, proposed, area.b)
        assert codes(again) == [("village", "INVALID_TRANSITION")]

        revoked = answer(gql, admins, REVOKE, proposed, area.b, reason="试点结束")
        assert revoked["userErrors"] == [] and revoked["agreement"]["state"] == "REVOKED"
        assert flows(db, area.a) == set()
        assert reconciles(sync_queue) == {area.a, area.b}
        history = revoked["agreement"]["history"]
        assert actions_of(revoked["agreement"]) == [
            ("PROPOSE", area.a),
            ("ACCEPT", area.b),
            ("REVOKE", area.b),
        ]
        assert history[2]["details"] == {"reason": "试点结束"} and history[0]["actorName"]
        assert audit_actions(db, proposed) == [
            ("agreement.propose", area.a),
            ("agreement.accept", area.b),
            ("agreement.revoke", area.b),
        ]
        # Over is over: neither side revokes or answers it again.
        assert codes(answer(gql, admins, REVOKE, proposed, area.a)) == [
            ("agreement", "INVALID_TRANSITION")
        ]

    def test_the_counterpart_declines(self, db, gql, area, admins):
        proposed = propose(gql, admins, area.b, counterpart=area.c)
        declined = answer(gql, admins, DECLINE, proposed, area.c, reason="暂不需要")
        agreement = declined["agreement"]
        assert agreement["state"] == "DECLINED" and parties(agreement)[area.c] == "DECLINED"
        assert agreement["history"][-1]["details"] == {"reason": "暂不需要"}
        assert audit_actions(db, proposed)[-1] == ("agreement.decline", area.c)
        late = answer(gql, admins, ACCEPT, proposed, area.c)
        assert codes(late) == [("agreement", "INVALID_TRANSITION")]

    def test_the_proposer_withdraws_a_proposal_the_counterpart_declines_it(self, gql, area, admins):
        proposed = propose(gql, admins, area.a, counterpart=area.b)
        # Not accepted yet: the counterpart declines, it does not revoke.
        premature = answer(gql, admins, REVOKE, proposed, area.b)
        assert codes(premature) == [("village", "INVALID_TRANSITION")]
        own = answer(gql, admins, ACCEPT, proposed, area.a)
        assert codes(own) == [("village", "INVALID_TRANSITION")]
        withdrawn = answer(gql, admins, REVOKE, proposed, area.a)
        assert withdrawn["agreement"]["state"] == "REVOKED"
        assert actions_of(withdrawn["agreement"]) == [("PROPOSE", area.a), ("REVOKE", area.a)]


def test_a_duplicate_proposal_is_refused_until_the_first_is_over(gql, area, admins):
    first = propose(gql, admins, area.a, counterpart=area.b)
    # Same parties and fields, whichever side proposes it.
    twice = call(
        gql,
        PROPOSE,
        admins[area.b],
        village=area.b,
        counterpart=area.a,
        recordTypes=ALERTS,
        purpose="再发一次",
    )
    assert codes(twice) == [(None, "DUPLICATE")]
    answer(gql, admins, DECLINE, first, area.b)
    assert propose(gql, admins, area.b, counterpart=area.a)["state"] == "PROPOSED"


def _days(n: int) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).isoformat()


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        ({"counterpart": "C"}, [("counterpart", "NOT_NEIGHBOUR")]),
        ({"counterpart": "A"}, [("counterpart", "INVALID")]),
        ({"counterpart": "nowhere_village"}, [("counterpart", "NOT_FOUND")]),
        ({}, [("counterpart", "REQUIRED")]),
        ({"counterpart": "B", "regionWide": True}, [("counterpart", "INVALID")]),
        ({"counterpart": "B", "purpose": "  "}, [("purpose", "REQUIRED")]),
        ({"counterpart": "B", "recordTypes": []}, [("recordTypes", "REQUIRED")]),
        (
            {"counterpart": "B", "recordTypes": [{"type": "gossip", "fields": ["x"]}]},
            [("recordTypes.gossip", "INVALID")],
        ),
        (
            {"counterpart": "B", "recordTypes": [{"type": "alert_broadcast", "fields": []}]},
            [("recordTypes.alert_broadcast", "REQUIRED")],
        ),
        # Published to the region alone: no agreement names it.
        (
            {
                "counterpart": "B",
                "recordTypes": [{"type": "escalated_request", "fields": ["state"]}],
            },
            [("recordTypes.escalated_request", "INVALID")],
        ),
        (
            {
                "counterpart": "B",
                "recordTypes": [{"type": "alert_broadcast", "fields": ["kind", "id_number"]}],
            },
            [("recordTypes.alert_broadcast", "INVALID")],
        ),
        (
            {"counterpart": "B", "recordTypes": [*ALERTS, *ALERTS]},
            [("recordTypes.1.type", "DUPLICATE")],
        ),
        ({"counterpart": "B", "validUntil": _days(-1)}, [("validUntil", "INVALID")]),
        (
            {"counterpart": "B", "validFrom": _days(10), "validUntil": _days(5)},
            [("validUntil", "INVALID")],
        ),
        ({"counterpart": "B", "validUntil": "2030-01-01T00:00:00"}, [("validUntil", "INVALID")]),
    ],
)
def test_proposals_are_checked(db, gql, token, untouched_area, input, expected):
    area = untouched_area
    slugs = {"A": area.a, "B": area.b, "C": area.c}
    if "counterpart" in input:
        input["counterpart"] = slugs.get(input["counterpart"], input["counterpart"])
    input.setdefault("recordTypes", ALERTS)
    input.setdefault("purpose", "互通走失警情")
    admin = token("village-admin", village=area.a)
    refused = call(gql, PROPOSE, admin, village=area.a, **input)
    assert refused["agreement"] is None
    assert codes(refused) == expected
    assert all(e["message"] for e in refused["userErrors"])
    with db.platform() as conn:
        assert not conn.execute(
            select(agreements.c.id).where(agreements.c.proposer == area.a)
        ).all()


# -- region-wide agreements -----------------------------------------------------------


class TestRegionWideAgreements(InTheSharedArea):
    """Each case closes the agreement it opens."""

    def test_region_wide_members_answer_each_for_itself_and_leave(
        self, db, gql, area, admins, settings, sync_queue
    ):
        proposed = propose(gql, admins, area.a, regionWide=True)
        assert proposed["scope"] == "REGION" and proposed["state"] == "PROPOSED"
        assert parties(proposed) == {area.a: "ACCEPTED", area.b: "PENDING", area.c: "PENDING"}

        assert answer(gql, admins, ACCEPT, proposed, area.c)["agreement"]["state"] == "ACTIVE"
        # Data flows only among members that accepted: B has not.
        assert flows(db, area.a) == {area.c} and flows(db, area.c) == {area.a}
        declined = answer(gql, admins, DECLINE, proposed, area.b)["agreement"]
        assert declined["state"] == "ACTIVE" and parties(declined)[area.b] == "DECLINED"
        assert flows(db, area.b) == set()
        sync_queue.empty()

        left = answer(gql, admins, REVOKE, proposed, area.c, reason="本村退出")["agreement"]
        # The last member but the proposer left: nothing is shared any more.
        assert left["state"] == "REVOKED" and parties(left)[area.c] == "LEFT"
        assert left["history"][-1]["action"] == "LEAVE"
        assert left["history"][-1]["details"] == {"reason": "本村退出", "lastMember": True}
        assert flows(db, area.a) == set()
        assert reconciles(sync_queue) == {area.a, area.b, area.c}
        assert audit_actions(db, proposed) == [
            ("agreement.propose", area.a),
            ("agreement.accept", area.c),
            ("agreement.decline", area.b),
            ("agreement.leave", area.c),
        ]

    def test_a_member_leaving_keeps_the_others_and_the_proposer_revokes_for_all(
        self, db, gql, area, admins
    ):
        proposed = propose(gql, admins, area.b, regionWide=True)
        answer(gql, admins, ACCEPT, proposed, area.a)
        answer(gql, admins, ACCEPT, proposed, area.c)
        left = answer(gql, admins, REVOKE, proposed, area.a)["agreement"]
        assert left["state"] == "ACTIVE" and parties(left)[area.a] == "LEFT"
        assert flows(db, area.b) == {area.c}
        assert codes(answer(gql, admins, REVOKE, proposed, area.a)) == [
            ("village", "INVALID_TRANSITION")
        ]
        revoked = answer(gql, admins, REVOKE, proposed, area.b)["agreement"]
        assert revoked["state"] == "REVOKED" and flows(db, area.c) == set()

    def test_a_region_wide_proposal_is_declined_once_everyone_declined(self, gql, area, admins):
        proposed = propose(gql, admins, area.c, regionWide=True)
        first = answer(gql, admins, DECLINE, proposed, area.a)["agreement"]
        assert first["state"] == "PROPOSED"
        second = answer(gql, admins, DECLINE, proposed, area.b)["agreement"]
        assert second["state"] == "DECLINED"


# -- expiry -----------------------------------------------------------------------------


def _backdate(db: Database, agreement: dict) -> None:
    with db.platform() as conn:
        conn.execute(
            update(agreements)
            .where(agreements.c.id == int(decode_id(agreement["id"]).key))
            .values(
                valid_from=text("now() - interval '2 hours'"),
                valid_until=text("now() - interval '1 hour'"),
            )
        )


def test_agreements_past_their_end_expire(db, gql, area, admins):
    active = propose(gql, admins, area.a, counterpart=area.b, validUntil=_days(1))
    answer(gql, admins, ACCEPT, active, area.b)
    pending = propose(gql, admins, area.b, counterpart=area.c, validUntil=_days(1))
    for agreement in (active, pending):
        _backdate(db, agreement)
    # Past its end it no longer moves data, even before the job marks it.
    assert flows(db, area.a) == set()
    late = answer(gql, admins, ACCEPT, pending, area.c)
    assert codes(late) == [("agreement", "INVALID_TRANSITION")]

    with db.platform() as conn:
        affected = expire_due(conn)
    # Only what was in force has copies to withdraw.
    assert {area.a, area.b} <= set(affected) and area.c not in affected
    with db.platform() as conn:
        assert expire_due(conn) == [] or not ({area.a, area.b} & set(expire_due(conn)))

    _status, body = gql(VILLAGE_AGREEMENTS, admins[area.b], {"slug": area.b, "state": "EXPIRED"})
    expired = {a["id"]: a for a in body["data"]["village"]["agreements"]}
    assert len(expired) == 2
    for agreement in expired.values():
        assert agreement["inForce"] is False
        assert agreement["history"][-1]["action"] == "EXPIRE"
        assert agreement["history"][-1]["village"] is None
        assert agreement["history"][-1]["actorName"] == "system:agreements"
    # One entry per party, in each village's audit log.
    assert set(audit_actions(db, active)[-2:]) == {
        ("agreement.expire", area.a),
        ("agreement.expire", area.b),
    }


class TestTheExpiryJob(InTheSharedArea):
    """The agreement is backdated and expired, no longer in force."""

    def test_the_expiry_job_reconciles_the_parties(
        self,
        db,
        gql,
        area,
        admins,
        job_env,
        sync_queue,
    ):
        active = propose(gql, admins, area.b, counterpart=area.c, validUntil=_days(1))
        answer(gql, admins, ACCEPT, active, area.c)
        sync_queue.empty()
        _backdate(db, active)
        assert {area.b, area.c} <= set(agreement_jobs.expire_agreements())
        assert {area.b, area.c} <= reconciles(sync_queue)
        with db.platform() as conn:
            key = int(decode_id(active["id"]).key)
            assert conn.execute(
                select(agreements.c.state).where(agreements.c.id == key)
            ).scalar() == ("expired")


# -- who may do what ---------------------------------------------------------------------


def test_only_the_villages_admins_propose_and_answer(db, gql, token, area, admins):
    proposed = propose(gql, admins, area.a, counterpart=area.b)
    client_id = f"ag-{uuid.uuid4().hex[:8]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client_id,
                name="协议测试客户端",
                villages=[area.a, area.b],
                scopes=["residents:read"],
            )
        )
    input = {"agreement": proposed["id"], "village": area.b}
    new = {"village": area.b, "counterpart": area.a, "recordTypes": ALERTS, "purpose": "x"}
    for caller, expected in (
        (token("grid-worker", village=area.b), "FORBIDDEN"),
        (token("regional-coordinator", region=area.region), "FORBIDDEN"),
        (token("regional-coordinator", region="testregion"), "NOT_FOUND"),
        (token("integrator", client=client_id), "FORBIDDEN"),
        (token("integrator"), "NOT_FOUND"),
        (admins[area.a], "NOT_FOUND"),  # an admin of A does not answer for B
    ):
        for document, variables in (
            (ACCEPT, input),
            (DECLINE, input),
            (REVOKE, input),
            (PROPOSE, new),
        ):
            assert error_code(gql, document, caller, {"input": variables}) == expected
    # C is no party: its admin gets the agreement as not found.
    other = call(gql, ACCEPT, admins[area.c], agreement=proposed["id"], village=area.c)
    assert codes(other) == [("agreement", "NOT_FOUND")]
    bogus = {"agreement": "bm9wZQ", "village": area.b}
    assert error_code(gql, ACCEPT, admins[area.b], {"input": bogus}) == "NOT_FOUND"
    assert audit_actions(db, proposed) == [("agreement.propose", area.a)]


def test_who_reads_agreements(gql, token, area, admins):
    proposed = propose(gql, admins, area.a, counterpart=area.b)
    for caller in (
        admins[area.b],
        token("grid-worker", village=area.b),
        token("regional-coordinator", region=area.region),
        token("platform-admin"),
    ):
        status, body = gql(VILLAGE_AGREEMENTS, caller, {"slug": area.b})
        assert status == 200 and "errors" not in body, body
        [seen] = body["data"]["village"]["agreements"]
        assert decode_id(seen["id"]).key == decode_id(proposed["id"]).key
    _status, body = gql(VILLAGE_AGREEMENTS, admins[area.c], {"slug": area.c})
    assert body["data"]["village"]["agreements"] == []
    assert (
        error_code(
            gql,
            VILLAGE_AGREEMENTS,
            token("regional-coordinator", region="testregion"),
            {"slug": area.b},
        )
        == "NOT_FOUND"
    )
    # The state filter.
    _status, body = gql(VILLAGE_AGREEMENTS, admins[area.a], {"slug": area.a, "state": "ACTIVE"})
    assert body["data"]["village"]["agreements"] == []

    # The region's view: its coordinators and platform admins.
    for caller in (token("regional-coordinator", region=area.region), token("platform-admin")):
        _status, body = gql(REGION_AGREEMENTS, caller, {"slug": area.c})
        assert [a["proposer"]["slug"] for a in body["data"]["village"]["region"]["agreements"]] == [
            area.a
        ]
    assert error_code(gql, REGION_AGREEMENTS, admins[area.a], {"slug": area.a}) == "FORBIDDEN"
    by_id = """query($id: String!) { region(id: $id) { agreements(state: PROPOSED) { state } } }"""
    _status, body = gql(
        by_id, token("regional-coordinator", region=area.region), {"id": area.region}
    )
    assert body["data"]["region"]["agreements"] == [{"state": "PROPOSED"}]
    other = token("regional-coordinator", region="testregion")
    assert error_code(gql, by_id, other, {"id": area.region}) == "NOT_FOUND"


def test_an_agreement_is_a_node_of_the_village_it_was_read_through(gql, area, admins):
    proposed = propose(gql, admins, area.a, counterpart=area.b)
    _status, body = gql(NODE, admins[area.a], {"id": proposed["id"]})
    assert body["data"]["node"]["state"] == "PROPOSED"
    # B's admin reads it through B; A's ID names a village B's admin does not reach.
    assert error_code(gql, NODE, admins[area.b], {"id": proposed["id"]}) == "NOT_FOUND"
    _status, body = gql(VILLAGE_AGREEMENTS, admins[area.b], {"slug": area.b})
    as_b = body["data"]["village"]["agreements"][0]["id"]
    _status, body = gql(NODE, admins[area.b], {"id": as_b})
    assert body["data"]["node"]["id"] == as_b
    # C is reachable by C's admin, but no party.
    as_c = encode_id("Agreement", area.c, decode_id(as_b).key)
    assert error_code(gql, NODE, admins[area.c], {"id": as_c}) == "NOT_FOUND"


# -- no N+1 ------------------------------------------------------------------------------


def test_village_agreements_cost_the_same_for_two_or_six(app, db, gql, area, admins):
    engine = app.extensions["villagelink"].db.engine
    types = [n for n, t in RECORD_TYPES.items() if t.agreeable and n != "resident_transfer"]

    def counted() -> tuple[int, int]:
        with count_statements(engine) as statements:
            status, body = gql(VILLAGE_AGREEMENTS, admins[area.b], {"slug": area.b})
        assert status == 200 and "errors" not in body, body
        return len(body["data"]["village"]["agreements"]), len(statements)

    for record_type in types[:2]:
        done = propose(
            gql,
            admins,
            area.a,
            counterpart=area.b,
            recordTypes=[{"type": record_type, "fields": list(RECORD_TYPES[record_type].fields)}],
        )
        answer(gql, admins, ACCEPT, done, area.b)
    counted()  # warm the pool
    two = counted()
    for record_type in types[2:]:
        propose(
            gql,
            admins,
            area.b,
            regionWide=True,
            recordTypes=[{"type": record_type, "fields": list(RECORD_TYPES[record_type].fields)}],
        )
    six = counted()
    # the agreements, their parties, their history, and the access epoch at the end (the
    # caller's reach is kept with the token; no village transaction read the epoch)
    assert two == (2, 4) and six == (len(types), 4)


# -- the exchange log ---------------------------------------------------------------------


def _alert(db: Database, slug: str, record_id: int, version: int = 1) -> None:
    with db.tenant(slug) as conn:
        emit(
            conn,
            "Alert",
            record_id,
            {"kind": "missing_person", "state": "open", "summary": "走失老人", "latitude": 39.1},
            version=version,
        )


def test_the_exchange_log_shows_both_sides_and_no_third(db, gql, token, area, admins):
    proposed = propose(gql, admins, area.a, counterpart=area.b)
    answer(gql, admins, ACCEPT, proposed, area.b)
    _alert(db, area.a, 7)
    sync_village(db, area.a)
    revoked = answer(gql, admins, REVOKE, proposed, area.a)
    assert revoked["agreement"]["state"] == "REVOKED"
    reconcile_village(db, area.a)

    def entries(caller: str, slug: str, **variables) -> list[dict]:
        status, body = gql(EXCHANGE_LOG, caller, {"slug": slug, **variables})
        assert status == 200 and "errors" not in body, body
        return [e["node"] for e in body["data"]["village"]["exchangeLog"]["edges"]]

    sent = entries(admins[area.a], area.a, direction="SENT")
    # Newest first: the withdrawal after the revocation, then the publish.
    assert [(e["action"], e["origin"], e["audience"]) for e in sent] == [
        ("WITHDRAW", area.a, area.b),
        ("PUBLISH", area.a, area.b),
    ]
    publish = sent[1]
    assert publish["recordType"] == "alert_broadcast" and publish["originId"] == 7
    # Its reader reads the villages' names, whichever village of the region they are.
    with db.platform() as conn:
        names = dict(conn.execute(select(pm.tenants.c.slug, pm.tenants.c.name)).all())
    assert (publish["originName"], publish["audienceName"]) == (names[area.a], names[area.b])
    assert names[area.a].startswith("甲村")
    assert publish["payloadHash"] and publish["lagMs"] is not None and sent[0]["reason"]
    [agreement_id] = publish["agreementIds"]
    assert decode_id(agreement_id).key == decode_id(proposed["id"]).key
    assert decode_id(agreement_id).village == area.a

    received = entries(admins[area.b], area.b, direction="RECEIVED")
    assert [(e["action"], e["origin"]) for e in received] == [
        ("WITHDRAW", area.a),
        ("PUBLISH", area.a),
    ]
    assert entries(admins[area.b], area.b, direction="SENT") == []
    assert len(entries(token("platform-admin"), area.b)) == 2
    assert entries(admins[area.c], area.c) == []

    # Paging, newest first.
    _status, body = gql(EXCHANGE_LOG, admins[area.a], {"slug": area.a, "first": 1})
    page = body["data"]["village"]["exchangeLog"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] is True
    older = entries(admins[area.a], area.a, first=1, after=page["pageInfo"]["endCursor"])
    assert [e["action"] for e in older] == ["PUBLISH"]

    for caller, expected in (
        (token("grid-worker", village=area.a), "FORBIDDEN"),
        (token("regional-coordinator", region=area.region), "FORBIDDEN"),
        (admins[area.c], "NOT_FOUND"),
    ):
        assert error_code(gql, EXCHANGE_LOG, caller, {"slug": area.a}) == expected


class TestRowLevelSecurity(InTheSharedArea):
    """The case reads only the log entry it wrote."""

    def test_row_level_security_hides_the_log_from_a_third_village(self, db, area):
        with db.platform() as conn:
            entry = conn.execute(
                insert(exchange_log)
                .values(
                    action="publish",
                    origin=area.a,
                    audience=area.b,
                    region_id=area.region,
                    record_type="alert_broadcast",
                    origin_id=1,
                    version=1,
                    agreement_ids=[],
                    payload_hash="x",
                )
                .returning(exchange_log.c.id)
            ).scalar_one()
        for slug, seen in ((area.a, 1), (area.b, 1), (area.c, 0)):
            with db.tenant(slug) as conn:
                rows = conn.execute(
                    select(exchange_log.c.id).where(exchange_log.c.id == entry)
                ).all()
            assert len(rows) == seen


# -- demo and tables ----------------------------------------------------------------------


def test_the_demo_agreements_are_seeded_once(db, area):
    d = new_village(db, "丁村", area.region).slug
    ring = [area.a, area.b, area.c, d]
    with db.platform() as conn:
        conn.execute(
            insert(pm.neighbour_links),
            [
                dict(zip(("village_a", "village_b"), sorted(p), strict=True))
                for p in ((area.c, d), (d, area.a))
            ],
        )
    actor = system_actor("demo")
    with db.platform() as conn:
        created = seed_demo_agreements(conn, actor, ring)
    assert len(created) == 1 + len(ring)
    with db.platform() as conn:
        assert seed_demo_agreements(conn, actor, ring) == []
        for village in ring:
            assert flows(db, village) == {
                ring[(ring.index(village) + 1) % len(ring)],
                ring[ring.index(village) - 1],
            }
        states = conn.execute(
            select(agreements.c.scope, agreements.c.state).where(agreements.c.id.in_(created))
        ).all()
    assert sorted(states) == [("neighbour", "active")] * len(ring) + [("region", "active")]


def test_migration_creates_what_the_tables_describe(db):
    ours = {"agreements", "agreement_parties", "agreement_events", "records", "log", "cursors"}

    def only_ours(_object, name, type_, _reflected, _compare_to) -> bool:
        return type_ != "table" or name in ours

    for metadata, schema in ((pm.metadata, "platform"), (exchange_metadata, "exchange")):
        with db.platform() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_server_default": False,
                    "include_object": only_ours,
                    "include_schemas": True,
                    "include_name": lambda name, type_, _parent, schema=schema: (
                        type_ != "schema" or name == schema
                    ),
                },
            )
            assert compare_metadata(context, metadata) == []


class TestActionsCalledDirectly(InTheSharedArea):
    """The agreement each case proposes is read by its id."""

    def test_actions_called_directly_lock_and_answer(self, db, area):
        """The actions as other code calls them (the demo, jobs)."""
        actor = system_actor("test")
        with db.platform() as conn:
            agreement = do_propose_agreement(
                conn,
                actor,
                area.b,
                counterpart=area.c,
                record_types={"shared_resource": ["name", "kind"]},
                purpose="共享AED",
                valid_until=datetime.now(UTC) + timedelta(days=1),
            )
            assert agreement["party_villages"] == sorted([area.b, area.c])
            accepted = do_accept_agreement(conn, actor, agreement["id"], area.c)
            assert accepted["state"] == "active"
            events = conn.execute(
                select(agreement_events.c.action).where(
                    agreement_events.c.agreement_id == agreement["id"]
                )
            ).scalars()
            assert list(events) == ["propose", "accept"]

    def test_concurrent_steps_are_taken_one_after_the_other(self, db, area):
        """The agreement row is locked by each step: a revocation arriving while an
        acceptance is still open waits for it, then revokes what is by then active."""
        actor = system_actor("test")
        with db.platform() as conn:
            agreement = do_propose_agreement(
                conn,
                actor,
                area.a,
                counterpart=area.b,
                record_types={"alert_broadcast": ["kind"]},
                purpose="并发测试",
            )
        outcome: dict = {}

        def revoke() -> None:
            with db.platform() as conn:
                outcome["state"] = do_revoke_agreement(conn, actor, agreement["id"], area.a)[
                    "state"
                ]

        with db.engine.connect() as first:
            with first.begin():
                do_accept_agreement(first, actor, agreement["id"], area.b)
                racer = threading.Thread(target=revoke)
                racer.start()
                racer.join(timeout=1)
                assert racer.is_alive()  # waiting on the row lock
            racer.join(timeout=10)
        assert outcome == {"state": "revoked"}
        with db.platform() as conn:
            history = conn.execute(
                select(agreement_events.c.action)
                .where(agreement_events.c.agreement_id == agreement["id"])
                .order_by(agreement_events.c.id)
            ).scalars()
            assert list(history) == ["propose", "accept", "revoke"]
