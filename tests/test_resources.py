"""Shared resources and their bookings: admins' writes with outbox and audit,
bookings by the village and by neighbours under an agreement, conflicts at request
and at approval (two connections racing), the requester's view, statement counts,
and the sync to the neighbour's exchange."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, select

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform import models as pm
from villagelink.platform.audit import system_actor
from villagelink.platform.linkage.catalogue import RECORD_TYPES, SHARED_RESOURCE
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.linkage.tables import records
from villagelink.tenants.demo.resources import seed_demo_resources
from villagelink.tenants.models import metadata
from villagelink.tenants.outbox import outbox
from villagelink.tenants.resources import actions
from villagelink.tenants.resources.tables import resource_bookings
from villagelink.tenants.user_errors import ActionFailed

from .conftest import agree, new_village

ACTOR = system_actor("test")

RESOURCE_FIELDS = """id village kind name description locationText latitude longitude
  contactName contactPhone status bookable shared version"""
CREATE = f"""mutation($input: CreateSharedResourceInput!) {{ createSharedResource(input: $input) {{
  resource {{ {RESOURCE_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateSharedResourceInput!) {{ updateSharedResource(input: $input) {{
  resource {{ {RESOURCE_FIELDS} }} userErrors {{ field message code }} }} }}"""
RETIRE = """mutation($input: RetireSharedResourceInput!) { retireSharedResource(input: $input) {
  resource { id status version } userErrors { field message code } } }"""
BOOKING_FIELDS = """id village requesterVillage requesterName requesterPhone purpose from to
  state requestedBy decidedBy decidedAt cancelledBy cancelledByVillage cancelledAt reason
  resource { id name kind }"""
BOOK = f"""mutation($input: BookSharedResourceInput!) {{ bookSharedResource(input: $input) {{
  booking {{ {BOOKING_FIELDS} }} userErrors {{ field message code }} }} }}"""
DECIDE = f"""mutation($input: %s!) {{ %s(input: $input) {{
  booking {{ {BOOKING_FIELDS} }} userErrors {{ field message code }} }} }}"""
APPROVE = DECIDE % ("ResourceBookingInput", "approveResourceBooking")
REJECT = DECIDE % ("RejectResourceBookingInput", "rejectResourceBooking")
CANCEL = DECIDE % ("CancelResourceBookingInput", "cancelResourceBooking")
RESOURCES = f"""query($slug: String!) {{ village(slug: $slug) {{
  sharedResources {{ {RESOURCE_FIELDS} }} }} }}"""
BOOKINGS = f"""query($slug: String!, $state: ResourceBookingState, $first: Int) {{
  village(slug: $slug) {{ resourceBookings(state: $state, first: $first) {{ totalCount
    edges {{ node {{ {BOOKING_FIELDS} }} }} }} }} }}"""
OUTGOING = """query($slug: String!) { village(slug: $slug) {
  outgoingResourceBookings { id village state purpose resource { id name } } } }"""


# -- helpers --------------------------------------------------------------------


def ok(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def payload(result: tuple[int, dict], field: str) -> dict:
    return ok(result)[field]


def codes(found: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in found["userErrors"]]


def first_code(result: tuple[int, dict]) -> str:
    return result[1]["errors"][0]["extensions"]["code"]


def key(global_id: str) -> int:
    return int(decode_id(global_id).key)


def moment(hours: float) -> str:
    """An instant `hours` from now, whole minutes, in village time."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return (now + timedelta(hours=hours)).astimezone().isoformat()


def resource_input(slug: str, **overrides) -> dict:
    return {
        "village": slug,
        "kind": "VENUE",
        "name": "文化礼堂",
        "description": "可容纳200人",
        "locationText": "文化广场北侧",
        "latitude": 39.1,
        "longitude": 117.2,
        "contactName": "李秀兰",
        "contactPhone": "13803110002",
        "shared": True,
        **overrides,
    }


def book_input(resource: str, village: str, start: float = 24, hours: float = 3, **more) -> dict:
    return {
        "resource": resource,
        "village": village,
        "from": moment(start),
        "to": moment(start + hours),
        "purpose": "村民议事会",
        "contactName": "张伟",
        "contactPhone": "13912345678",
        **more,
    }


@pytest.fixture
def owner(village) -> str:
    return village.slug


@pytest.fixture
def neighbour(db) -> str:

    return new_village(db, "邻村").slug


@pytest.fixture
def admin(token, owner) -> str:
    return token("village-admin", village=owner)


@pytest.fixture
def neighbour_admin(token, neighbour) -> str:
    return token("village-admin", village=neighbour)


def creator(gql, admin: str, owner: str, name: Callable[[], str] = lambda: "文化礼堂"):
    """Make a resource in `owner` as its admin: `name()` names it unless the case does."""

    def make(**overrides) -> dict:
        given = resource_input(owner, **{"name": name(), **overrides})
        found = payload(gql(CREATE, admin, {"input": given}), "createSharedResource")
        assert found["userErrors"] == [], found
        return found["resource"]

    return make


@pytest.fixture
def create(gql, admin, owner):
    return creator(gql, admin, owner)


# The module's shared village is the owner for cases that read only the resources and
# bookings they make and change nothing village-wide (no agreement, no listing).
@pytest.fixture
def shared_admin(token, shared_village) -> str:
    return token("village-admin", village=shared_village.slug)


_resource_numbers = itertools.count(1)


@pytest.fixture
def shared_create(gql, shared_admin, shared_village):
    """As `create`, in the shared village: each resource a name of its own, so that no
    case meets another's as a duplicate."""
    return creator(
        gql, shared_admin, shared_village.slug, lambda: f"礼堂{next(_resource_numbers)}号"
    )


def outbox_rows(db, slug: str) -> list[dict]:
    with db.tenant(slug) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(
                    outbox.c.record_type,
                    outbox.c.record_id,
                    outbox.c.operation,
                    outbox.c.version,
                    outbox.c.payload,
                ).order_by(outbox.c.id)
            ).mappings()
        ]


def audit(db, slug: str) -> list[tuple]:
    a = pm.audit_log
    with db.platform() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(a.c.action, a.c.subject_type, a.c.details)
                .where(a.c.village == slug, a.c.action.like("resource.%"))
                .order_by(a.c.occurred_at)
            )
        ]


# -- schema ---------------------------------------------------------------------

OUR_TABLES = ("shared_resources", "resource_bookings")


def test_migration_creates_what_the_tables_describe(db, shared_village):
    with db.tenant(shared_village.slug) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if any(f"'{name}'" in repr(d) for name in OUR_TABLES)
        ]
    assert differences == []


# -- resources ------------------------------------------------------------------


def test_admins_create_update_and_retire_with_the_outbox_and_audit(db, gql, admin, owner, create):
    venue = create()
    assert venue["status"] == "AVAILABLE" and venue["bookable"] and venue["version"] == 1
    private = create(kind="AED", name="卫生室AED", shared=False)

    changed = payload(
        gql(UPDATE, admin, {"input": {"id": venue["id"], "contactPhone": "13803119999"}}),
        "updateSharedResource",
    )["resource"]
    assert changed["version"] == 2 and changed["contactPhone"] == "13803119999"
    unchanged = payload(
        gql(UPDATE, admin, {"input": {"id": venue["id"], "contactPhone": "13803119999"}}),
        "updateSharedResource",
    )["resource"]
    assert unchanged["version"] == 2  # nothing changed, nothing emitted
    payload(
        gql(UPDATE, admin, {"input": {"id": private["id"], "status": "UNAVAILABLE"}}),
        "updateSharedResource",
    )
    retired = payload(gql(RETIRE, admin, {"input": {"id": venue["id"]}}), "retireSharedResource")
    assert retired["resource"]["status"] == "RETIRED" and retired["resource"]["version"] == 3

    rows = outbox_rows(db, owner)
    # Only the shared one, once per change; retiring it withdraws it.
    assert [(r["record_type"], r["record_id"], r["operation"], r["version"]) for r in rows] == [
        ("SharedResource", key(venue["id"]), "upsert", 1),
        ("SharedResource", key(venue["id"]), "upsert", 2),
        ("SharedResource", key(venue["id"]), "delete", 3),
    ]
    assert set(rows[0]["payload"]) == set(RECORD_TYPES[SHARED_RESOURCE].fields)
    assert rows[1]["payload"]["contact_phone"] == "13803119999"
    assert [a[0] for a in audit(db, owner)] == [
        "resource.create",
        "resource.create",
        "resource.update",
        "resource.update",
        "resource.retire",
    ]
    listed = ok(gql(RESOURCES, admin, {"slug": owner}))["village"]["sharedResources"]
    assert [r["name"] for r in listed] == ["卫生室AED"]  # retired ones only when asked

    refused = payload(
        gql(UPDATE, admin, {"input": {"id": venue["id"], "name": "新名"}}), "updateSharedResource"
    )
    assert codes(refused) == [("id", "FORBIDDEN_STATE")]


def test_unsharing_withdraws_and_sharing_again_publishes(db, gql, admin, owner, create):
    venue = create()
    for shared in (False, True):
        payload(
            gql(UPDATE, admin, {"input": {"id": venue["id"], "shared": shared}}),
            "updateSharedResource",
        )
    assert [(r["operation"], r["version"]) for r in outbox_rows(db, owner)] == [
        ("upsert", 1),
        ("delete", 2),
        ("upsert", 3),
    ]


def test_resource_input_is_checked_in_chinese(gql, admin, owner, create):
    create()
    cases = [
        ({"name": "文化礼堂"}, [("name", "DUPLICATE")]),
        ({"name": "   "}, [("name", "REQUIRED")]),
        ({"kind": "boat", "name": "船"}, None),  # an enum: refused by GraphQL itself
        ({"name": "AED", "latitude": 39.0, "longitude": None}, [("latitude", "INVALID")]),
        ({"name": "AED", "latitude": 91.0, "longitude": 1.0}, [("latitude", "INVALID")]),
        ({"name": "AED", "contactPhone": "123"}, [("contactPhone", "INVALID")]),
        ({"name": "AED", "status": "RETIRED"}, [("status", "INVALID")]),
    ]
    for overrides, expected in cases:
        result = gql(CREATE, admin, {"input": resource_input(owner, **overrides)})
        if expected is None:
            assert result[1].get("errors"), result
            continue
        found = payload(result, "createSharedResource")
        assert codes(found) == expected, (overrides, found)
        assert all(e["message"] and not e["message"].isascii() for e in found["userErrors"])


def test_only_whole_village_writers_manage_resources(
    gql, token, shared_village, other_village, shared_create
):
    owner = shared_village.slug
    venue = shared_create()
    worker = token("grid-worker", village=owner)
    assert first_code(gql(CREATE, worker, {"input": resource_input(owner, name="x")})) == (
        "FORBIDDEN"
    )
    assert first_code(gql(RETIRE, worker, {"input": {"id": venue["id"]}})) == "FORBIDDEN"
    stranger_admin = token("village-admin", village=other_village.slug)
    assert first_code(gql(RETIRE, stranger_admin, {"input": {"id": venue["id"]}})) == ("NOT_FOUND")


# -- bookings in the owner's village --------------------------------------------


def test_a_booking_is_approved_and_overlaps_are_refused(db, gql, admin, owner, create):
    venue = create()
    first = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner)}), "bookSharedResource"
    )["booking"]
    assert first["state"] == "PENDING" and first["requesterVillage"] == owner
    assert first["resource"]["name"] == "文化礼堂"
    # Pending bookings may overlap: the admin chooses between them.
    second = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner, start=25)}), "bookSharedResource"
    )["booking"]
    approved = payload(
        gql(APPROVE, admin, {"input": {"booking": first["id"]}}), "approveResourceBooking"
    )["booking"]
    assert approved["state"] == "APPROVED" and approved["decidedBy"] and approved["decidedAt"]

    clash = payload(
        gql(APPROVE, admin, {"input": {"booking": second["id"]}}), "approveResourceBooking"
    )
    assert codes(clash) == [("booking", "CONFLICT")]
    at_request = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner, start=26)}), "bookSharedResource"
    )
    assert codes(at_request) == [("from", "CONFLICT")]
    # Back to back is no overlap.
    after = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner, start=27)}), "bookSharedResource"
    )
    assert after["userErrors"] == []

    again = payload(
        gql(APPROVE, admin, {"input": {"booking": first["id"]}}), "approveResourceBooking"
    )
    assert codes(again) == [("booking", "FORBIDDEN_STATE")]
    rejected = payload(
        gql(REJECT, admin, {"input": {"booking": second["id"], "reason": "时段已被占用"}}),
        "rejectResourceBooking",
    )["booking"]
    assert rejected["state"] == "REJECTED" and rejected["reason"] == "时段已被占用"
    cancelled = payload(
        gql(CANCEL, admin, {"input": {"booking": first["id"]}}), "cancelResourceBooking"
    )["booking"]
    assert cancelled["state"] == "CANCELLED" and cancelled["cancelledByVillage"] == owner
    assert codes(
        payload(gql(CANCEL, admin, {"input": {"booking": second["id"]}}), "cancelResourceBooking")
    ) == [("booking", "FORBIDDEN_STATE")]
    assert [a[0] for a in audit(db, owner)][1:] == [
        "resource.book",
        "resource.book",
        "resource.approve",
        "resource.book",
        "resource.reject",
        "resource.cancel",
    ]


def test_booking_input_is_checked(gql, shared_admin, shared_village, shared_create):
    admin, owner = shared_admin, shared_village.slug
    venue = shared_create()
    aed = shared_create(kind="AED", bookable=False)
    cases = [
        (book_input(venue["id"], owner, hours=0), [("to", "INVALID")]),
        (book_input(venue["id"], owner, start=-2), [("from", "INVALID")]),
        (book_input(venue["id"], owner, hours=24 * 40), [("to", "INVALID")]),
        ({**book_input(venue["id"], owner), "from": "2026-12-01T09:00:00"}, [("from", "INVALID")]),
        (book_input(venue["id"], owner, purpose=" "), [("purpose", "REQUIRED")]),
        (book_input(aed["id"], owner), [("resource", "FORBIDDEN_STATE")]),
        (
            book_input(encode_id("SharedResource", owner, 999999), owner),
            [("resource", "NOT_FOUND")],
        ),
    ]
    for given, expected in cases:
        found = payload(gql(BOOK, admin, {"input": given}), "bookSharedResource")
        assert codes(found) == expected, (given, found)


def test_retiring_cancels_the_open_bookings(db, gql, admin, owner, create):
    venue = create()
    booking = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner)}), "bookSharedResource"
    )["booking"]
    payload(
        gql(RETIRE, admin, {"input": {"id": venue["id"], "reason": "礼堂翻修"}}),
        "retireSharedResource",
    )
    found = ok(gql(BOOKINGS, admin, {"slug": owner}))["village"]["resourceBookings"]
    [node] = [e["node"] for e in found["edges"]]
    assert node["id"] == booking["id"]
    assert (node["state"], node["reason"]) == ("CANCELLED", "礼堂翻修")
    assert codes(
        payload(
            gql(BOOK, admin, {"input": book_input(venue["id"], owner, 48)}), "bookSharedResource"
        )
    ) == [("resource", "FORBIDDEN_STATE")]


def test_two_concurrent_approvals_of_overlapping_bookings_do_not_both_succeed(db, owner):
    with db.tenant(owner) as conn:
        venue = actions.do_create_resource(conn, ACTOR, owner, {"kind": "venue", "name": "礼堂"})
        ids = [
            actions.do_book_resource(
                conn,
                ACTOR,
                owner,
                venue["id"],
                owner,
                {
                    "from": moment(24 + n),
                    "to": moment(27 + n),
                    "purpose": "议事",
                    "contact_name": "张伟",
                },
            )["id"]
            for n in (0, 1)
        ]
    outcome: dict[int, str] = {}
    first_locked = threading.Event()

    def approve(booking_id: int, hold: bool) -> None:
        with db.tenant(owner) as conn:
            try:
                actions.do_approve_booking(conn, ACTOR, owner, booking_id)
                outcome[booking_id] = "approved"
            except ActionFailed as failed:
                outcome[booking_id] = failed.errors[0].code
            if hold:
                # Keep the transaction (and the resource's lock) open while the other
                # approval starts, so it must wait for this commit.
                first_locked.set()
                threading.Event().wait(0.5)

    holder = threading.Thread(target=approve, args=(ids[0], True))
    holder.start()
    first_locked.wait(10)
    approve(ids[1], False)
    holder.join()
    assert outcome == {ids[0]: "approved", ids[1]: "CONFLICT"}
    with db.tenant(owner) as conn:
        states = dict(conn.execute(select(resource_bookings.c.id, resource_bookings.c.state)).all())
    assert sorted(states.values()) == ["approved", "pending"]


def test_grid_workers_book_but_do_not_decide(gql, token, shared_village, shared_create):
    owner = shared_village.slug
    venue = shared_create()
    worker = token("grid-worker", village=owner)
    booking = payload(
        gql(BOOK, worker, {"input": book_input(venue["id"], owner)}), "bookSharedResource"
    )["booking"]
    assert first_code(gql(APPROVE, worker, {"input": {"booking": booking["id"]}})) == "FORBIDDEN"


# -- neighbours -----------------------------------------------------------------


def test_a_neighbour_books_under_an_agreement_and_sees_its_requests(
    db, gql, admin, owner, neighbour, neighbour_admin, create
):
    venue = create()
    given = book_input(venue["id"], neighbour)
    # No agreement: the resource does not exist for the neighbour.
    assert first_code(gql(BOOK, neighbour_admin, {"input": given})) == "NOT_FOUND"
    agreement = agree(db, owner, neighbour, {SHARED_RESOURCE: ["name", "kind"]})

    booking = payload(gql(BOOK, neighbour_admin, {"input": given}), "bookSharedResource")["booking"]
    assert booking["village"] == owner and booking["requesterVillage"] == neighbour
    assert decode_id(booking["id"]).village == owner
    with db.tenant(owner) as conn:
        stored = conn.execute(select(resource_bookings)).mappings().one()
    assert stored["agreement_ids"] == [agreement]
    [entry] = [a for a in audit(db, owner) if a[0] == "resource.book"]
    assert entry[2]["requester_village"] == neighbour and entry[2]["agreement_ids"] == [agreement]

    outgoing = ok(gql(OUTGOING, neighbour_admin, {"slug": neighbour}))["village"]
    assert outgoing["outgoingResourceBookings"] == [
        {
            "id": booking["id"],
            "village": owner,
            "state": "PENDING",
            "purpose": "村民议事会",
            "resource": {"id": venue["id"], "name": "文化礼堂"},
        }
    ]
    # The owner's admin decides; the neighbour sees the answer.
    payload(gql(APPROVE, admin, {"input": {"booking": booking["id"]}}), "approveResourceBooking")
    outgoing = ok(gql(OUTGOING, neighbour_admin, {"slug": neighbour}))["village"]
    assert [b["state"] for b in outgoing["outgoingResourceBookings"]] == ["APPROVED"]
    # The neighbour may neither decide nor read the owner's lists.
    assert first_code(gql(APPROVE, neighbour_admin, {"input": {"booking": booking["id"]}})) == (
        "NOT_FOUND"
    )
    assert first_code(gql(BOOKINGS, neighbour_admin, {"slug": owner})) == "NOT_FOUND"

    cancelled = payload(
        gql(
            CANCEL,
            neighbour_admin,
            {"input": {"booking": booking["id"], "village": neighbour, "reason": "活动改期"}},
        ),
        "cancelResourceBooking",
    )["booking"]
    assert (cancelled["state"], cancelled["cancelledByVillage"]) == ("CANCELLED", neighbour)


def test_what_a_neighbour_cannot_book(db, gql, token, owner, neighbour, neighbour_admin, create):
    private = create(name="内部场地", shared=False)
    retired = create(name="旧礼堂")
    agree(db, owner, neighbour, {SHARED_RESOURCE: ["name"]})
    payload(
        gql(RETIRE, token("village-admin", village=owner), {"input": {"id": retired["id"]}}),
        "retireSharedResource",
    )
    for resource in (private, retired):
        found = payload(
            gql(BOOK, neighbour_admin, {"input": book_input(resource["id"], neighbour)}),
            "bookSharedResource",
        )
        assert codes(found) == [("resource", "NOT_FOUND")]
    # An agreement covering something else lets nothing be booked.
    other = provisioning_village(db)
    agree(db, owner, other, {"open_activity": ["title"]})
    shared = create(name="共享礼堂")
    other_admin = token("village-admin", village=other)
    assert first_code(gql(BOOK, other_admin, {"input": book_input(shared["id"], other)})) == (
        "NOT_FOUND"
    )
    # Acting for a village the caller cannot write in.
    assert first_code(gql(BOOK, neighbour_admin, {"input": book_input(shared["id"], other)})) == (
        "NOT_FOUND"
    )


def test_only_the_requesting_neighbour_cancels(
    db, gql, token, owner, neighbour, neighbour_admin, create
):
    venue = create()
    other = provisioning_village(db)
    for village in (neighbour, other):
        agree(db, owner, village, {SHARED_RESOURCE: ["name"]})
    booking = payload(
        gql(BOOK, neighbour_admin, {"input": book_input(venue["id"], neighbour)}),
        "bookSharedResource",
    )["booking"]
    other_admin = token("village-admin", village=other)
    refused = payload(
        gql(CANCEL, other_admin, {"input": {"booking": booking["id"], "village": other}}),
        "cancelResourceBooking",
    )
    assert codes(refused) == [("booking", "NOT_FOUND")]
    assert (
        ok(gql(OUTGOING, other_admin, {"slug": other}))["village"]["outgoingResourceBookings"] == []
    )


def provisioning_village(db) -> str:

    return new_village(db, "第三村").slug


# -- the exchange ---------------------------------------------------------------


def test_a_shared_resource_reaches_the_neighbour_with_its_allowed_fields_only(
    db, gql, admin, owner, neighbour, create
):
    allowed = ["kind", "name", "status", "bookable"]
    agreement = agree(db, owner, neighbour, {SHARED_RESOURCE: allowed})
    venue = create()
    create(name="内部场地", shared=False)
    sync_village(db, owner)

    def copies() -> list[dict]:
        r = records
        with db.platform() as conn:
            return [
                dict(row)
                for row in conn.execute(
                    select(r).where(r.c.origin == owner, r.c.record_type == SHARED_RESOURCE)
                ).mappings()
            ]

    [copy] = copies()
    assert (copy["audience"], copy["origin_id"]) == (neighbour, key(venue["id"]))
    assert copy["payload"] == {
        "kind": "venue",
        "name": "文化礼堂",
        "status": "available",
        "bookable": True,
    }
    assert agreement in copy["agreement_ids"]
    payload(gql(RETIRE, admin, {"input": {"id": venue["id"]}}), "retireSharedResource")
    sync_village(db, owner)
    assert copies() == []


# -- reads ----------------------------------------------------------------------


@contextmanager
def count_statements(engine):
    statements: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture(scope="module")
def busy(db) -> str:
    """A village of 30 resources and 60 bookings, which the statement-count cases only read."""
    owner = new_village(db).slug
    with db.tenant(owner) as conn:
        for n in range(30):
            resource = actions.do_create_resource(
                conn, ACTOR, owner, {"kind": "venue", "name": f"场地{n}", "shared": n % 2 == 0}
            )
            for m in range(2):
                actions.do_book_resource(
                    conn,
                    ACTOR,
                    owner,
                    resource["id"],
                    owner,
                    {
                        "from": moment(24 + 4 * m),
                        "to": moment(26 + 4 * m),
                        "purpose": "议事",
                        "contact_name": "张伟",
                    },
                )
    return owner


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # role, path and access epoch (the caller's reach is kept with the token),
        # the resources
        (RESOURCES, 2),
        # role, path and epoch, the page with its resources, the count
        (BOOKINGS, 3),
    ],
)
def test_statement_counts_are_pinned_and_flat(app, gql, token, busy, query, expected):
    admin = token("village-admin", village=busy)
    engine = app.extensions["villagelink"].db.engine
    gql(query, admin, {"slug": busy, "first": 1})  # warm the pool
    counts = []
    for first in (5, 50):
        with count_statements(engine) as statements:
            ok(gql(query, admin, {"slug": busy, "first": first}))
        counts.append(len(statements))
    assert counts == [expected, expected]


def test_nodes_round_trip(gql, shared_admin, shared_village, shared_create):
    admin, owner = shared_admin, shared_village.slug
    venue = shared_create()
    booking = payload(
        gql(BOOK, admin, {"input": book_input(venue["id"], owner)}), "bookSharedResource"
    )["booking"]
    for raw in (venue["id"], booking["id"]):
        found = ok(gql("query($id: ID!) { node(id: $id) { id } }", admin, {"id": raw}))
        assert found["node"]["id"] == raw


def test_demo_resources_seed_once(db, owner):
    with db.tenant(owner) as conn:
        assert seed_demo_resources(conn, owner, "测试村") == 5
        assert seed_demo_resources(conn, owner, "测试村") == 0
        states = sorted(conn.execute(select(resource_bookings.c.state)).scalars())
    assert states == ["approved", "pending"]
    shared = [r for r in outbox_rows(db, owner) if r["record_type"] == "SharedResource"]
    assert len(shared) == 5
