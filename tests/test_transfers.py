"""Resident transfers (居民迁移) between neighbouring villages: consent and agreement
required, the tombstone and the points in the village left, the record arriving
through the sync (idempotent, allow-list respected), the lists, statement counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs.maintenance import count_village
from villagelink.platform import models as pm
from villagelink.platform.audit import system_actor
from villagelink.platform.linkage.catalogue import RECORD_TYPES, RESIDENT_TRANSFER
from villagelink.platform.linkage.sync import as_village, reconcile_village, sync_village
from villagelink.platform.linkage.tables import agreements, records
from villagelink.tenants import id_numbers, provisioning
from villagelink.tenants import models as m
from villagelink.tenants.activities.points import award_for
from villagelink.tenants.activities.tables import points_ledger
from villagelink.tenants.models import metadata
from villagelink.tenants.outbox import outbox
from villagelink.tenants.residents.actions import do_create_resident
from villagelink.tenants.residents.transfers import incoming_transfers, receive_transfer
from villagelink.tenants.stats import compute_village_stats

from .conftest import agree, new_village
from .test_query_count import count_statements

ACTOR = system_actor("test")
ALL_FIELDS = list(RECORD_TYPES[RESIDENT_TRANSFER].fields)

TRANSFER = """mutation($input: TransferResidentInput!) { transferResident(input: $input) {
  transfer { id village direction state otherVillage name movedOn pointsBalance
    consent { givenBy method recordedAt note } resident { id status movedTo movedOn } }
  userErrors { field message code } } }"""
COMPLETE = """mutation($input: CompleteResidentTransferInput!) {
  completeResidentTransfer(input: $input) {
  transfer { id state pointsBalance
    resident { id name idNumber(unmasked: true, reason: "核对身份") } }
  userErrors { field message code } } }"""
RESIDENT = """query($id: ID!) { node(id: $id) { ... on Resident {
  id name status movedTo movedOn phone household { id } tags { tag } pointsBalance } } }"""
TRANSFERS = """query($slug: String!, $direction: TransferDirection!) { village(slug: $slug) {
  residentTransfers(direction: $direction) { id direction state otherVillage name movedOn
    pointsBalance consent { givenBy method } resident { id name status } } } }"""
RESIDENTS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 50) { totalCount edges { node { name } } } } }"""


# -- helpers --------------------------------------------------------------------


def ok(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def codes(found: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in found["userErrors"]]


_numbers = iter(range(1, 999))


def a_resident(db, slug: str, name: str = "王秀英", points: int = 0, tag: str | None = None) -> int:
    number = id_numbers.compose("110101", date(1950, 3, 4), next(_numbers))
    with db.tenant(slug) as conn:
        resident_id = do_create_resident(
            conn,
            ACTOR,
            slug,
            {"name": name, "id_number": number, "phone": "13812345678"},
            household_id=None,
            allowed_grids=None,
        )["id"]
        if points:
            award_for(
                conn,
                ACTOR,
                slug,
                resident_id=resident_id,
                points=points,
                reason="志愿服务",
                source_type="manual",
                source_id=None,
            )
        if tag:
            conn.execute(m.resident_tags.insert().values(resident_id=resident_id, tag=tag))
    return resident_id


def transfer_input(slug: str, resident_id: int, to: str, **overrides) -> dict:
    return {
        "resident": encode_id("Resident", slug, resident_id),
        "destination": to,
        "consent": {"givenBy": "王秀英", "method": "SIGNED_FORM", "note": "本人签字"},
        "movedOn": "2026-11-20",
        **overrides,
    }


def balance(db, slug: str, resident_id: int) -> int:
    with db.tenant(slug) as conn:
        p = points_ledger
        return conn.execute(
            select(func.coalesce(func.sum(p.c.points), 0)).where(p.c.resident_id == resident_id)
        ).scalar_one()


def copies(db, origin: str) -> list[dict]:
    r = records
    with db.platform() as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(r.c.audience, r.c.origin_id, r.c.payload).where(
                    r.c.origin == origin, r.c.record_type == RESIDENT_TRANSFER
                )
            ).mappings()
        ]


def arrived(db, slug: str) -> list[dict]:
    with db.tenant(slug) as conn:
        return [dict(row) for row in conn.execute(select(incoming_transfers)).mappings()]


def residents_named(db, slug: str, name: str) -> list[dict]:
    with db.tenant(slug) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(m.residents).where(m.residents.c.name == name)
            ).mappings()
        ]


def new_region(db) -> str:
    region_id = f"rg_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region_id, "迁移测试片区")
    return region_id


@pytest.fixture
def region(db) -> str:
    return new_region(db)


def _village(db, region: str, name: str) -> str:
    return new_village(db, name, region).slug


@pytest.fixture
def a(db, region) -> str:
    return _village(db, region, "甲村")


@pytest.fixture
def b(db, region) -> str:
    return _village(db, region, "乙村")


@pytest.fixture
def c(db, region) -> str:
    return _village(db, region, "丙村")


@dataclass(frozen=True)
class Pair:
    a: str
    b: str


@pytest.fixture(scope="module")
def agreed_pair(db) -> Pair:
    """Two neighbours of a region of their own that agreed to transfer residents with every
    field, for the module's cases that move nothing through the sync and read only the
    residents they made (the other cases make, and check, agreements of their own)."""
    region_id = new_region(db)
    pair = Pair(_village(db, region_id, "甲村"), _village(db, region_id, "乙村"))
    agree(db, pair.a, pair.b, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region_id)
    return pair


@pytest.fixture
def admin_a(token, a) -> str:
    return token("village-admin", village=a)


@pytest.fixture
def admin_b(token, b) -> str:
    return token("village-admin", village=b)


# -- schema ---------------------------------------------------------------------

OUR_TABLES = ("resident_transfers", "incoming_transfers", "residents")


def test_migration_creates_what_the_tables_describe(db, agreed_pair):
    # It reads the schema only: any village of the module's will do.
    with db.tenant(agreed_pair.a) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if any(f"'{name}'" in repr(d) for name in OUR_TABLES)
        ]
    assert differences == []


# -- refusals ---------------------------------------------------------------------


class TestBetweenAgreedNeighbours:
    """Refusals in the module's agreed pair: each case reads only the resident it made."""

    @pytest.fixture
    def a(self, agreed_pair: Pair) -> str:
        return agreed_pair.a

    @pytest.fixture
    def b(self, agreed_pair: Pair) -> str:
        return agreed_pair.b

    def test_consent_is_required_and_nothing_is_written(self, db, gql, admin_a, a, b):
        resident_id = a_resident(db, a, name="赵桂兰", points=10)
        cases = [
            ({"consent": None}, [("consent", "REQUIRED")]),
            ({"consent": {"givenBy": "  ", "method": "PHONE"}}, [("consent.givenBy", "REQUIRED")]),
            ({"destination": a}, [("destination", "INVALID")]),
        ]
        for overrides, expected in cases:
            found = ok(
                gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b, **overrides)})
            )
            assert codes(found["transferResident"]) == expected, overrides
            assert all(not e["message"].isascii() for e in found["transferResident"]["userErrors"])
        (resident,) = residents_named(db, a, "赵桂兰")
        assert resident["status"] == "active" and resident["phone"] == "13812345678"
        assert balance(db, a, resident_id) == 10

    def test_grid_workers_and_neighbours_may_not_transfer(self, db, gql, token, a, b):
        resident_id = a_resident(db, a)
        worker = token("grid-worker", village=a)
        neighbour = token("village-admin", village=b)
        for caller, code in ((worker, "FORBIDDEN"), (neighbour, "NOT_FOUND")):
            _status, body = gql(TRANSFER, caller, {"input": transfer_input(a, resident_id, b)})
            assert body["errors"][0]["extensions"]["code"] == code

    def test_a_tombstone_is_no_longer_changed(self, db, gql, admin_a, a, b):
        resident_id = a_resident(db, a)
        ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
        update = """mutation($input: UpdateResidentInput!) { updateResident(input: $input) {
          userErrors { field code } } }"""
        found = ok(
            gql(
                update,
                admin_a,
                {"input": {"id": encode_id("Resident", a, resident_id), "name": "x"}},
            )
        )
        assert codes(found["updateResident"]) == [("residentId", "FORBIDDEN_STATE")]


def test_without_an_agreement_the_transfer_is_refused(db, gql, admin_a, a, b, c, region):
    agree(db, a, b, {"alert_broadcast": ["kind"]}, region=region)  # another type only
    agree(db, a, c, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)  # another village
    resident_id = a_resident(db, a)
    found = ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
    assert codes(found["transferResident"]) == [("destination", "NO_AGREEMENT")]
    with db.tenant(a) as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


# -- the whole move ---------------------------------------------------------------


def test_the_resident_moves_with_a_tombstone_and_their_points(
    db, gql, admin_a, admin_b, a, b, c, region
):
    agree(db, a, b, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)
    agree(db, a, c, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)  # c must not get it anyway
    resident_id = a_resident(db, a, points=35, tag="elderly_living_alone")
    a_resident(db, a, name="李建国")

    found = ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))[
        "transferResident"
    ]
    assert found["userErrors"] == []
    transfer = found["transfer"]
    assert (transfer["direction"], transfer["state"], transfer["otherVillage"]) == (
        "OUTGOING",
        "SENT",
        b,
    )
    assert (transfer["name"], transfer["movedOn"], transfer["pointsBalance"]) == (
        "王秀英",
        "2026-11-20",
        35,
    )
    assert transfer["consent"]["givenBy"] == "王秀英" and transfer["consent"]["recordedAt"]
    assert transfer["resident"] == {
        "id": encode_id("Resident", a, resident_id),
        "status": "MOVED_OUT",
        "movedTo": b,
        "movedOn": "2026-11-20",
    }

    # A: the tombstone, its balance closed, no longer among the residents.
    tomb = ok(gql(RESIDENT, admin_a, {"id": encode_id("Resident", a, resident_id)}))["node"]
    assert (tomb["status"], tomb["movedTo"], tomb["phone"], tomb["household"], tomb["tags"]) == (
        "MOVED_OUT",
        b,
        None,
        None,
        [],
    )
    assert tomb["pointsBalance"] == 0 and balance(db, a, resident_id) == 0
    listed = ok(gql(RESIDENTS, admin_a, {"slug": a}))["village"]["residents"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["name"] == "李建国"
    # Nor in the statistics A publishes (or the counts of the stats job).
    with db.tenant(a) as conn:
        assert compute_village_stats(conn)["residents"] == 1
        assert count_village(a, conn).residents == 1
    again = ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
    assert codes(again["transferResident"]) == [("resident", "FORBIDDEN_STATE")]

    with db.tenant(a) as conn:
        (row,) = conn.execute(
            select(outbox).where(outbox.c.record_type == "ResidentTransfer")
        ).mappings()
    assert row["record_id"] == int(decode_id(transfer["id"]).key.removeprefix("o"))
    assert row["payload"]["_audience"] == [b]
    assert set(row["payload"]) - {"_audience"} <= set(ALL_FIELDS)
    assert row["payload"]["points_balance"] == 35 and row["payload"]["id_number"]

    sync_village(db, a)
    # Only the destination gets a copy, without the audience key.
    (copy,) = copies(db, a)
    assert copy["audience"] == b and "_audience" not in copy["payload"]

    # B: the resident, their tag and their points.
    (moved,) = residents_named(db, b, "王秀英")
    assert moved["status"] == "active" and moved["household_id"] is None
    assert moved["grid_id"] is None and moved["phone"] == "13812345678"
    assert balance(db, b, moved["id"]) == 35
    with db.tenant(b) as conn:
        tags = conn.execute(
            select(m.resident_tags.c.tag).where(m.resident_tags.c.resident_id == moved["id"])
        ).scalars()
        assert list(tags) == ["elderly_living_alone"]
    with db.platform() as conn:
        audited = conn.execute(
            select(pm.audit_log.c.action, pm.audit_log.c.actor_sub)
            .where(pm.audit_log.c.village == b)
            .order_by(pm.audit_log.c.occurred_at, pm.audit_log.c.id)
        ).all()
    # One transaction, one time: compared as a set.
    assert sorted(tuple(r) for r in audited) == [
        ("points.award", "system:sync"),
        ("resident.create", "system:sync"),
        ("resident.transfer_in", "system:sync"),
    ]

    outgoing = ok(gql(TRANSFERS, admin_a, {"slug": a, "direction": "OUTGOING"}))
    (out,) = outgoing["village"]["residentTransfers"]
    assert (out["name"], out["resident"]["status"]) == ("王秀英", "MOVED_OUT")
    incoming = ok(gql(TRANSFERS, admin_b, {"slug": b, "direction": "INCOMING"}))
    (inc,) = incoming["village"]["residentTransfers"]
    assert (inc["direction"], inc["state"], inc["otherVillage"], inc["pointsBalance"]) == (
        "INCOMING",
        "RECEIVED",
        a,
        35,
    )
    assert inc["consent"] == {"givenBy": "王秀英", "method": "SIGNED_FORM"}
    assert inc["resident"]["name"] == "王秀英" and inc["resident"]["status"] == "ACTIVE"
    assert (
        ok(gql(TRANSFERS, admin_b, {"slug": b, "direction": "OUTGOING"}))["village"][
            "residentTransfers"
        ]
        == []
    )


def test_a_transfer_received_twice_registers_one_resident(db, gql, admin_a, a, b, region):
    agree(db, a, b, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)
    resident_id = a_resident(db, a, points=12)
    found = ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
    transfer_id = int(decode_id(found["transferResident"]["transfer"]["id"]).key[1:])
    sync_village(db, a)
    sync_village(db, a)
    (copy,) = copies(db, a)
    # A replayed delivery: the sync's own hand-over, called again.
    with db.platform() as conn, as_village(conn, b):
        receive_transfer(conn, a, transfer_id, 1, copy["payload"])
    assert len(residents_named(db, b, "王秀英")) == 1
    assert len(arrived(db, b)) == 1
    (moved,) = residents_named(db, b, "王秀英")
    assert balance(db, b, moved["id"]) == 12


def test_only_allowed_fields_arrive_and_the_admin_completes_the_registration(
    db, gql, admin_a, admin_b, a, b, region
):
    allowed = [f for f in ALL_FIELDS if f not in ("id_number", "phone")]
    agree(db, a, b, {RESIDENT_TRANSFER: allowed}, region=region)
    resident_id = a_resident(db, a, points=8)
    with db.tenant(a) as conn:
        number = conn.execute(
            select(m.residents.c.id_number).where(m.residents.c.id == resident_id)
        ).scalar_one()
    ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
    sync_village(db, a)

    (copy,) = copies(db, a)
    assert "id_number" not in copy["payload"] and "phone" not in copy["payload"]
    (incoming,) = arrived(db, b)
    assert incoming["state"] == "pending_registration" and incoming["resident_id"] is None
    assert "id_number" not in incoming["payload"] and "phone" not in incoming["payload"]
    assert residents_named(db, b, "王秀英") == []

    (listed,) = ok(gql(TRANSFERS, admin_b, {"slug": b, "direction": "INCOMING"}))["village"][
        "residentTransfers"
    ]
    assert listed["state"] == "PENDING_REGISTRATION" and listed["resident"] is None
    wrong = ok(gql(COMPLETE, admin_b, {"input": {"transfer": listed["id"], "idNumber": "123"}}))
    assert codes(wrong["completeResidentTransfer"]) == [("idNumber", "INVALID")]
    done = ok(gql(COMPLETE, admin_b, {"input": {"transfer": listed["id"], "idNumber": number}}))[
        "completeResidentTransfer"
    ]
    assert done["userErrors"] == []
    assert done["transfer"]["state"] == "RECEIVED"
    assert done["transfer"]["resident"]["idNumber"] == number
    (moved,) = residents_named(db, b, "王秀英")
    assert moved["phone"] is None and balance(db, b, moved["id"]) == 8
    twice = ok(gql(COMPLETE, admin_b, {"input": {"transfer": listed["id"], "idNumber": number}}))
    assert codes(twice["completeResidentTransfer"]) == [("transfer", "FORBIDDEN_STATE")]


def test_a_resident_who_comes_back_is_the_same_record(db, gql, token, a, b, region):
    agree(db, a, b, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)
    resident_id = a_resident(db, a, points=5)
    ok(
        gql(
            TRANSFER,
            token("village-admin", village=a),
            {"input": transfer_input(a, resident_id, b)},
        )
    )
    sync_village(db, a)
    (moved,) = residents_named(db, b, "王秀英")
    back = ok(
        gql(
            TRANSFER,
            token("village-admin", village=b),
            {"input": transfer_input(b, moved["id"], a)},
        )
    )
    assert back["transferResident"]["userErrors"] == []
    sync_village(db, b)
    (returned,) = residents_named(db, a, "王秀英")
    assert returned["id"] == resident_id and returned["status"] == "active"
    assert returned["moved_to"] is None and balance(db, a, resident_id) == 5


# -- statement counts ---------------------------------------------------------------


def test_transfer_lists_cost_the_same_for_one_or_many(app, db, gql, admin_a, a, b, region):
    agree(db, a, b, {RESIDENT_TRANSFER: ALL_FIELDS}, region=region)

    def statements() -> int:
        variables = {"slug": a, "direction": "OUTGOING"}
        gql(TRANSFERS, admin_a, variables)  # warm the pool
        with count_statements(app.extensions["villagelink"].db.engine) as seen:
            ok(gql(TRANSFERS, admin_a, variables))
        return len(seen)

    ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, a_resident(db, a, name="甲"), b)}))
    one = statements()
    for name in ("乙", "丙", "丁"):
        ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, a_resident(db, a, name=name), b)}))
    # role, path and access epoch (the caller's reach is kept with the token),
    # the transfers, their residents
    assert one == statements() == 3


def test_a_waiting_transfer_registers_when_the_agreement_shares_the_id_number(
    db, gql, admin_a, a, b, region
):
    narrow = [f for f in ALL_FIELDS if f != "id_number"]
    agreement_id = agree(db, a, b, {RESIDENT_TRANSFER: narrow}, region=region)
    resident_id = a_resident(db, a, points=3)
    ok(gql(TRANSFER, admin_a, {"input": transfer_input(a, resident_id, b)}))
    sync_village(db, a)
    assert [t["state"] for t in arrived(db, b)] == ["pending_registration"]
    with db.platform() as conn:
        conn.execute(
            agreements.update()
            .where(agreements.c.id == agreement_id)
            .values(fields={RESIDENT_TRANSFER: ALL_FIELDS})
        )
    reconcile_village(db, a)
    (incoming,) = arrived(db, b)
    assert incoming["state"] == "received" and incoming["payload"]["id_number"]
    (moved,) = residents_named(db, b, "王秀英")
    assert balance(db, b, moved["id"]) == 3
