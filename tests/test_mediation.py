"""Mediation cases (调解): numbering, the status machine, input rules, the village
admin's sole reach, audited reads, no sharing, and a pinned statement count."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date

import pytest
from sqlalchemy import event, insert, select, text

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import clock
from villagelink.tenants.mediation import actions
from villagelink.tenants.mediation.tables import STATUSES

CASE_FIELDS = """id number year category summary status version outcome agreementText
  referredTo closingNote concludedAt
  parties { role name phone resident { id name } }
  mediator { name staff { id name } }
  sessions { heldOn place attendees notes }"""
LIST = f"""query($slug: String!, $first: Int, $after: String, $filter: MediationCaseFilter) {{
  village(slug: $slug) {{ name mediationCases(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {CASE_FIELDS} }} }} }} }} }}"""
NODE = f"""query($id: ID!) {{ node(id: $id) {{ ... on MediationCase {{ {CASE_FIELDS} }} }} }}"""
PAYLOAD = f"mediationCase {{ {CASE_FIELDS} }} userErrors {{ field message code }}"
MUTATIONS = {
    name: f"""mutation($input: {name[0].upper()}{name[1:]}Input!) {{
      {name}(input: $input) {{ {PAYLOAD} }} }}"""
    for name in (
        "createMediationCase",
        "updateMediationCase",
        "startMediation",
        "addMediationSession",
        "concludeMediation",
        "withdrawMediationCase",
    )
}
RESIDENTS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 10) { edges { node { id name } } }
  grids(first: 100) { edges { node { staff { id name } } } } } }"""
# What CASE_FIELDS shows of a case, as the read audit names it.
SHOWN_PARTS = sorted(
    [
        *("number", "year", "category", "summary", "status", "version", "outcome"),
        *("agreement_text", "referred_to", "closing_note", "concluded_at"),
        *("parties", "mediator", "sessions"),
    ]
)
SESSION = {"heldOn": "2026-03-02", "place": "小崔议事室", "attendees": ["张三", "李四"]}


@pytest.fixture
def slug(case_village) -> str:
    """The module's shared village: cases read only the cases they made. A test that asks
    for `populated_village` gets one of its own (it counts or numbers every case there)."""
    return case_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


@pytest.fixture
def people(gql, admin, slug) -> dict:
    return people_of(gql, admin, slug)


def people_of(gql, admin: str, slug: str) -> dict:
    """Resident IDs and a grid staff member of the village, to name in cases."""
    _, body = gql(RESIDENTS, admin, {"slug": slug})
    village = body["data"]["village"]
    staff = next(s for e in village["grids"]["edges"] for s in e["node"]["staff"])
    return {"residents": [e["node"] for e in village["residents"]["edges"]], "staff": staff}


def mutate(gql, who: str, name: str, input: dict) -> dict:
    status, body = gql(MUTATIONS[name], who, {"input": input})
    assert status == 200 and "errors" not in body, body
    return body["data"][name]


def ok(gql, who: str, name: str, input: dict) -> dict:
    payload = mutate(gql, who, name, input)
    assert payload["userErrors"] == [], payload
    return payload["mediationCase"]


def new_case(slug: str, people: dict, **overrides) -> dict:
    return {
        "village": slug,
        "category": "NEIGHBOUR",
        "summary": "楼上漏水殃及楼下，双方就维修费用发生争执",
        "parties": [
            {"role": "APPLICANT", "resident": people["residents"][0]["id"]},
            {"role": "RESPONDENT", "name": "赵物业", "phone": "13912345678"},
        ],
        **overrides,
    }


def create(gql, admin, slug, people, **overrides) -> dict:
    return ok(gql, admin, "createMediationCase", new_case(slug, people, **overrides))


START = ("startMediation", {"mediator": {"name": "崔调解"}})
# How a new case gets to each status, through the API.
PATHS = {
    "REGISTERED": [],
    "IN_MEDIATION": [START],
    "RESOLVED": [
        START,
        ("concludeMediation", {"outcome": "AGREEMENT", "agreementText": "各担一半"}),
    ],
    "REFERRED": [START, ("concludeMediation", {"outcome": "REFERRED", "referredTo": "镇司法所"})],
    "CLOSED": [START, ("concludeMediation", {"outcome": "NO_AGREEMENT"})],
    "WITHDRAWN": [("withdrawMediationCase", {"reason": "双方已自行和解"})],
}


def drive(gql, admin, case: dict, status: str) -> dict:
    for name, input in PATHS[status]:
        case = ok(gql, admin, name, {"id": case["id"], **input})
    assert case["status"] == status
    return case


def audit_actions(db, slug: str, prefix: str = "mediation") -> list[tuple]:
    log = pm.audit_log.c
    with db.platform() as conn:
        return conn.execute(
            select(log.action, log.subject_id, log.fields, log.reason)
            .where(log.village == slug, log.action.like(f"{prefix}%"))
            .order_by(log.occurred_at, log.action)
        ).all()


def counts(db, slug: str) -> tuple:
    with db.tenant(slug) as conn:
        rows = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM mediation_cases), "
                "(SELECT coalesce(sum(version), 0) FROM mediation_cases), "
                "(SELECT count(*) FROM mediation_parties), "
                "(SELECT count(*) FROM mediation_sessions)"
            )
        ).one()
    writes = [a for a in audit_actions(db, slug) if not a[0].endswith(".read")]
    return (*rows, len(writes))


# -- registering -----------------------------------------------------------------


@pytest.mark.usefixtures("populated_village")  # numbering starts at 1 in a village's year
def test_register_numbers_parties_per_year(gql, admin, slug, people, db):
    first = create(gql, admin, slug, people)
    year = clock.today().year  # the village's year, as the case number counts it
    assert first["number"] == f"调〔{year}〕第1号" and first["status"] == "REGISTERED"
    resident, outsider = first["parties"]
    assert resident["resident"]["id"] == people["residents"][0]["id"]
    assert resident["name"] == people["residents"][0]["name"]
    assert outsider == {
        "role": "RESPONDENT",
        "name": "赵物业",
        "phone": "139****5678",
        "resident": None,
    }
    second = create(gql, admin, slug, people, category="FAMILY")
    assert second["number"] == f"调〔{year}〕第2号"
    # A new year starts again at 1.
    with db.tenant(slug) as conn:
        next_year = actions.do_create_mediation_case(
            conn, _actor(slug), slug, _plain_case(), today=date(year + 1, 1, 1)
        )
    assert (next_year["year"], next_year["number"]) == (year + 1, 1)


def test_full_flow_with_staff_mediator_sessions_and_agreement(gql, admin, slug, people, db):
    audited = len(audit_actions(db, slug))
    case = create(gql, admin, slug, people)
    started = ok(
        gql,
        admin,
        "startMediation",
        {"id": case["id"], "mediator": {"staff": people["staff"]["id"]}},
    )
    assert started["status"] == "IN_MEDIATION"
    assert started["mediator"] == {"name": people["staff"]["name"], "staff": people["staff"]}
    ok(gql, admin, "addMediationSession", {"id": case["id"], **SESSION, "notes": "各自陈述"})
    with_two = ok(
        gql,
        admin,
        "addMediationSession",
        {"id": case["id"], "heldOn": "2026-03-01", "place": "村委会", "attendees": ["张三"]},
    )
    assert [s["heldOn"] for s in with_two["sessions"]] == ["2026-03-01", "2026-03-02"]
    assert with_two["sessions"][1]["notes"] == "各自陈述"
    resolved = ok(
        gql,
        admin,
        "concludeMediation",
        {"id": case["id"], "outcome": "AGREEMENT", "agreementText": "维修费各担一半"},
    )
    assert resolved["status"] == "RESOLVED" and resolved["outcome"] == "AGREEMENT"
    assert resolved["agreementText"] == "维修费各担一半" and resolved["concludedAt"]
    assert resolved["version"] == 5  # created, started, two sessions, concluded
    writes = [a for a, *_ in audit_actions(db, slug)[audited:] if not a.endswith(".read")]
    assert writes == [
        "mediation_case.create",
        "mediation_case.start",
        "mediation_case.add_session",
        "mediation_case.add_session",
        "mediation_case.conclude",
    ]


def test_update_corrects_a_case_and_ignores_no_op_changes(gql, admin, slug, people):
    case = create(gql, admin, slug, people)
    updated = ok(
        gql,
        admin,
        "updateMediationCase",
        {"id": case["id"], "category": "PROPERTY", "mediator": {"name": "崔调解"}},
    )
    assert updated["category"] == "PROPERTY" and updated["mediator"]["name"] == "崔调解"
    assert updated["version"] == 2
    unchanged = ok(gql, admin, "updateMediationCase", {"id": case["id"], "category": "PROPERTY"})
    assert unchanged["version"] == 2


def test_start_needs_a_mediator(gql, admin, slug, people, db):
    case = create(gql, admin, slug, people)
    before = counts(db, slug)
    payload = mutate(gql, admin, "startMediation", {"id": case["id"]})
    assert payload["userErrors"] == [
        {"field": "mediator", "message": "开始调解前须指定调解员", "code": "REQUIRED"}
    ]
    assert counts(db, slug) == before
    named = create(gql, admin, slug, people, mediator={"name": "崔调解"})
    assert ok(gql, admin, "startMediation", {"id": named["id"]})["status"] == "IN_MEDIATION"


# -- the status machine: every operation from every status ----------------------

OPERATIONS = {
    "start": ("startMediation", {"mediator": {"name": "崔调解"}}, "IN_MEDIATION"),
    "agree": ("concludeMediation", {"outcome": "AGREEMENT", "agreementText": "协议"}, "RESOLVED"),
    "refer": ("concludeMediation", {"outcome": "REFERRED", "referredTo": "派出所"}, "REFERRED"),
    "fail": ("concludeMediation", {"outcome": "NO_AGREEMENT", "note": "分歧较大"}, "CLOSED"),
    "withdraw": ("withdrawMediationCase", {"reason": "申请人撤回"}, "WITHDRAWN"),
    "session": ("addMediationSession", SESSION, None),
    "update": ("updateMediationCase", {"summary": "补充案情"}, None),
}
ALLOWED = {
    "REGISTERED": {"start", "withdraw", "update"},
    "IN_MEDIATION": {"agree", "refer", "fail", "withdraw", "session", "update"},
}


@pytest.mark.parametrize("status", [status.upper() for status in STATUSES])
def test_every_transition_from(gql, admin, slug, people, db, status):
    for operation, (name, input, to_status) in OPERATIONS.items():
        case = drive(gql, admin, create(gql, admin, slug, people), status)
        before = counts(db, slug)
        payload = mutate(gql, admin, name, {"id": case["id"], **input})
        if operation in ALLOWED.get(status, set()):
            assert payload["userErrors"] == [], (status, operation, payload)
            assert payload["mediationCase"]["status"] == (to_status or status)
            assert payload["mediationCase"]["version"] == case["version"] + 1
        else:
            assert payload["mediationCase"] is None
            [error] = payload["userErrors"]
            assert error["code"] == "INVALID_TRANSITION", (status, operation, error)
            assert error["field"] is None and error["message"].startswith("案件")
            assert counts(db, slug) == before, (status, operation)


def test_conclusion_details_match_outcome(gql, admin, slug, people):
    case = drive(gql, admin, create(gql, admin, slug, people), "IN_MEDIATION")
    for input, field, code in [
        ({"outcome": "AGREEMENT"}, "agreementText", "REQUIRED"),
        ({"outcome": "REFERRED"}, "referredTo", "REQUIRED"),
        ({"outcome": "NO_AGREEMENT", "agreementText": "x"}, "agreementText", "INVALID"),
        (
            {"outcome": "AGREEMENT", "agreementText": "x", "referredTo": "y"},
            "referredTo",
            "INVALID",
        ),
    ]:
        payload = mutate(gql, admin, "concludeMediation", {"id": case["id"], **input})
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    referred = ok(
        gql,
        admin,
        "concludeMediation",
        {"id": case["id"], "outcome": "REFERRED", "referredTo": "镇劳动仲裁委"},
    )
    assert referred["referredTo"] == "镇劳动仲裁委" and referred["outcome"] == "REFERRED"


# -- input rules ----------------------------------------------------------------


# Stand-ins for IDs of the test's own village, filled in by `fill`.
R0, R1, STAFF = "<resident 0>", "<resident 1>", "<staff>"


def fill(value, people: dict):
    if isinstance(value, dict):
        return {k: fill(v, people) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, people) for v in value]
    ids = {R0: people["residents"][0]["id"], R1: people["residents"][1]["id"]}
    return {**ids, STAFF: people["staff"]["id"]}.get(value, value)


def applicant_and(respondent: dict) -> dict:
    return {
        "parties": [{"role": "APPLICANT", "resident": R0}, {"role": "RESPONDENT", **respondent}]
    }


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"summary": ""}, "summary", "REQUIRED"),
        (
            {
                "parties": [
                    {"role": "APPLICANT", "resident": R0},
                    {"role": "APPLICANT", "name": "王五"},
                ]
            },
            "parties",
            "INVALID",
        ),
        (applicant_and({"name": "王五", "phone": "123"}), "parties.1.phone", "INVALID"),
        (applicant_and({}), "parties.1.name", "REQUIRED"),
        (applicant_and({"resident": R1, "name": "冒名"}), "parties.1.resident", "INVALID"),
        (applicant_and({"resident": R0}), "parties.1.resident", "DUPLICATE"),
        (
            applicant_and({"resident": encode_id("Resident", "liulin", 1)}),
            "parties.1.resident",
            "NOT_FOUND",
        ),
        ({"mediator": {"name": "崔调解", "staff": STAFF}}, "mediator.name", "INVALID"),
        ({"mediator": {"staff": "bm9wZQ"}}, "mediator.staff", "NOT_FOUND"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    gql, token, shared_village, db, overrides, field, code
):
    slug = shared_village.slug
    admin = token("village-admin", village=slug)
    people = people_of(gql, admin, slug)
    before = counts(db, slug)
    input = new_case(slug, people, **fill(overrides, people))
    payload = mutate(gql, admin, "createMediationCase", input)
    assert payload["mediationCase"] is None
    assert (field, code) in [(e["field"], e["code"]) for e in payload["userErrors"]], payload
    assert all(e["message"] for e in payload["userErrors"])
    assert counts(db, slug) == before


def test_session_rules(gql, admin, slug, people, db):
    case = drive(gql, admin, create(gql, admin, slug, people), "IN_MEDIATION")
    before = counts(db, slug)
    payload = mutate(
        gql, admin, "addMediationSession", {"id": case["id"], **SESSION, "attendees": []}
    )
    assert payload["userErrors"] == [
        {"field": "attendees", "message": "请填写至少一名参加人", "code": "REQUIRED"}
    ]
    payload = mutate(
        gql, admin, "addMediationSession", {"id": case["id"], **SESSION, "attendees": ["", "李四"]}
    )
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("attendees.0", "REQUIRED")]
    assert counts(db, slug) == before


# -- who may see mediation --------------------------------------------------------


@pytest.fixture
def integrator_of(db, token):
    """An integrator whose client may read the given village's residents."""

    def grant(slug: str) -> str:
        client = f"md-{slug}"
        with db.platform() as conn:
            conn.execute(
                insert(pm.api_clients).values(
                    client_id=client, name="调解测试", villages=[slug], scopes=["residents:read"]
                )
            )
        return token("integrator", client=client)

    return grant


def test_only_the_village_admin_sees_or_touches_cases(
    gql, admin, slug, people, db, token, integrator_of, village
):
    case = create(gql, admin, slug, people)
    missing = encode_id("MediationCase", slug, 999999)
    outsiders = {
        "platform-admin": token("platform-admin"),
        "regional-coordinator": token("regional-coordinator", region="testregion"),
        "grid-worker": token("grid-worker", village=slug),
        "integrator": integrator_of(slug),
        "admin of another village": token("village-admin", village=village.slug),
    }
    before = counts(db, slug), audit_actions(db, slug, "mediation_case.read")
    for who, outsider in outsiders.items():
        _, body = gql(LIST, outsider, {"slug": slug})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", who
        if who != "admin of another village":
            # The rest of the village stays readable; only mediation is not there.
            assert body["data"]["village"] == {"name": "测试村", "mediationCases": None}, who
        answers = []
        for case_id in (case["id"], missing):
            _, body = gql(NODE, outsider, {"id": case_id})
            answers.append(body["errors"][0])
        # An existing case and a made-up one are answered alike: nothing is revealed.
        assert answers[0]["extensions"] == answers[1]["extensions"], who
        assert answers[0]["extensions"]["code"] == "NOT_FOUND", who
        assert answers[0]["message"] == answers[1]["message"], who
        for name, input in [
            ("createMediationCase", new_case(slug, people)),
            ("startMediation", {"id": case["id"], "mediator": {"name": "某人"}}),
            ("withdrawMediationCase", {"id": case["id"], "reason": "x"}),
        ]:
            _, body = gql(MUTATIONS[name], outsider, {"input": input})
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", (who, name)
            assert body["data"] is None
    # Nothing written, and no read to audit: the refused callers saw nothing.
    assert (counts(db, slug), audit_actions(db, slug, "mediation_case.read")) == before


@pytest.mark.usefixtures("populated_village")  # pages through every case of the village
def test_village_admin_reads_own_cases(gql, admin, slug, people):
    case = create(gql, admin, slug, people)
    later = create(gql, admin, slug, people, category="LABOUR")
    _, body = gql(NODE, admin, {"id": case["id"]})
    assert body["data"]["node"]["number"] == case["number"]
    _, body = gql(LIST, admin, {"slug": slug, "first": 1})
    page = body["data"]["village"]["mediationCases"]
    assert [e["node"]["id"] for e in page["edges"]] == [case["id"]]
    after = page["pageInfo"]["endCursor"]
    _, body = gql(LIST, admin, {"slug": slug, "first": 1, "after": after})
    assert [e["node"]["id"] for e in body["data"]["village"]["mediationCases"]["edges"]] == [
        later["id"]
    ]
    _, body = gql(LIST, admin, {"slug": slug, "filter": {"category": "LABOUR"}})
    assert body["data"]["village"]["mediationCases"]["totalCount"] == 1
    _, body = gql(LIST, admin, {"slug": slug, "filter": {"status": "REGISTERED"}})
    assert body["data"]["village"]["mediationCases"]["totalCount"] == 2
    _, body = gql(LIST, admin, {"slug": slug, "filter": {"status": "RESOLVED"}})
    assert body["data"]["village"]["mediationCases"]["edges"] == []


# -- audited reads ----------------------------------------------------------------


@pytest.mark.usefixtures("populated_village")  # reads pages of every case of the village
def test_every_read_of_a_case_is_audited(gql, admin, slug, people, db):
    made = [create(gql, admin, slug, people)["id"] for _ in range(3)]
    ids_only = """query($slug: String!) { village(slug: $slug) {
      mediationCases(first: 2) { edges { node { id } } } } }"""
    before = len(audit_actions(db, slug, "mediation_case.read"))
    gql(ids_only, admin, {"slug": slug})
    reads = audit_actions(db, slug, "mediation_case.read")[before:]
    # Even a page of bare IDs is a read of those cases.
    assert len(reads) == 2 and all(fields == [] for *_, fields, _reason in reads)

    gql(LIST, admin, {"slug": slug, "first": 3})
    reads = audit_actions(db, slug, "mediation_case.read")[before + 2 :]
    assert sorted(subject for _a, subject, *_ in reads) == sorted(str(_key(i)) for i in made)
    # Each entry names the parts of the case that were shown.
    assert all(fields == SHOWN_PARTS and reason is None for *_, fields, reason in reads)

    gql(
        "query($id: ID!) { node(id: $id) { ... on MediationCase { status } } }",
        admin,
        {"id": made[0]},
    )
    last = audit_actions(db, slug, "mediation_case.read")[-1]
    assert last[2] == ["status"]

    # A query that shows no case leaves no read entry.
    count = len(audit_actions(db, slug, "mediation_case.read"))
    gql(
        "query($slug: String!) { village(slug: $slug) { mediationCases { totalCount } } }",
        admin,
        {"slug": slug},
    )
    assert len(audit_actions(db, slug, "mediation_case.read")) == count


def test_unmasked_party_phone_is_audited_with_reason(gql, admin, slug, people, db):
    case = create(gql, admin, slug, people)
    query = """query($id: ID!) { node(id: $id) { ... on MediationCase {
      parties { name phone(unmasked: true, reason: "通知调解时间") } } } }"""
    before = len(audit_actions(db, slug, "mediation_party.read_unmasked"))
    _, body = gql(query, admin, {"id": case["id"]})
    assert {"name": "赵物业", "phone": "13912345678"} in body["data"]["node"]["parties"]
    [entry] = audit_actions(db, slug, "mediation_party.read_unmasked")[before:]
    assert entry[2:] == (["phone"], "通知调解时间")


def test_cases_are_never_put_in_the_outbox(gql, admin, slug, people, db):
    """Mediation stays in the village (privacy): no agreement can share it."""
    case = create(gql, admin, slug, people)
    drive(gql, admin, case, "IN_MEDIATION")
    with db.tenant(slug) as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 0


# -- numbering under concurrency -------------------------------------------------


def _actor(slug: str) -> Actor:
    principal = Principal(
        "md-test", "调解测试", frozenset({"village-admin"}), frozenset({slug}), frozenset(), None
    )
    return Actor(principal, "md-test")


def _plain_case() -> dict:
    return {
        "category": "labour",
        "summary": "拖欠工钱",
        "parties": [{"role": "applicant", "name": "甲"}, {"role": "respondent", "name": "乙"}],
    }


def test_numbers_are_unique_and_gapless_under_concurrency(db, village):
    slug, today = village.slug, date(2026, 6, 1)
    # A registration that rolls back gives its number back.
    conn = db.begin_tenant(slug)
    actions.do_create_mediation_case(conn, _actor(slug), slug, _plain_case(), today=today)
    conn.close()

    start, numbers, errors = threading.Barrier(8), [], []

    def register() -> None:
        try:
            start.wait()
            with db.tenant(slug) as conn:
                case = actions.do_create_mediation_case(
                    conn, _actor(slug), slug, _plain_case(), today=today
                )
            numbers.append(case["number"])
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 9))


# -- statement count -------------------------------------------------------------


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


@pytest.mark.usefixtures("populated_village")  # its pages are the village's first cases
def test_case_list_statement_count_is_pinned_and_flat(app, gql, admin, slug, people, db):
    staff = _key(people["staff"]["id"])
    residents = [_key(r["id"]) for r in people["residents"]]
    with db.tenant(slug) as conn:
        for i in range(50):
            case = actions.do_create_mediation_case(
                conn,
                _actor(slug),
                slug,
                {
                    **_plain_case(),
                    "parties": [
                        {"role": "applicant", "resident": residents[i % len(residents)]},
                        {"role": "respondent", "name": "乙", "phone": "13700001111"},
                    ],
                    "mediator": {"staff": staff},
                },
                today=date(2026, 6, 1),
            )
            actions.do_start_mediation(conn, _actor(slug), slug, case["id"], {})
            actions.do_add_mediation_session(
                conn,
                _actor(slug),
                slug,
                case["id"],
                {"held_on": "2026-06-02", "place": "村委会", "attendees": ["甲", "乙"]},
            )

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            status, body = gql(LIST, admin, {"slug": slug, "first": first})
        assert status == 200 and "errors" not in body, body
        edges = body["data"]["village"]["mediationCases"]["edges"]
        assert len(edges) == first and all(e["node"]["sessions"] for e in edges)
        assert all(e["node"]["parties"][0]["resident"] for e in edges)
        return statements

    run(1)  # warm the pool: pre-ping is not ours to count
    five, fifty = run(5), run(50)
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, the count, parties, residents, staff, sessions, and the read audit (one
    # statement for the whole page)
    assert len(five) == len(fifty) == 8, "\n".join(fifty)


def _key(global_id: str) -> int:
    return int(decode_id(global_id).key)
