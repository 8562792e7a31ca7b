"""Public notices (村务公开): the state machine, the publish window, roles and residents'
apps, read counts, PDF attachments (local disk and MinIO), audit, outbox and the
statement count of the notice list."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, select

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform import models as pm
from villagelink.platform.access import resolve_access
from villagelink.platform.app import create_app, runtime_of
from villagelink.platform.audit import Actor
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import models as m
from villagelink.tenants.models import metadata
from villagelink.tenants.notices import actions, queries
from villagelink.tenants.notices.tables import DRAFT, PUBLISHED, WITHDRAWN, notice_reads, notices
from villagelink.tenants.outbox import outbox

from .conftest import TEST_REGION, new_village, written_since_now
from .test_query_count import count_statements

ADMIN = Actor(
    Principal(
        sub="notice-admin",
        username="村务管理员",
        roles=frozenset({"village-admin"}),
        villages=frozenset(),
        regions=frozenset(),
        client_id=None,
    )
)

NOTICE_FIELDS = """id category title body state publishFrom publishUntil visible publishedAt
  withdrawnAt withdrawalReason readCount totalReads version
  attachments { id filename contentType size url }"""
CREATE = f"""mutation($input: CreateNoticeInput!) {{ createNotice(input: $input) {{
  notice {{ {NOTICE_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateNoticeInput!) {{ updateNotice(input: $input) {{
  notice {{ {NOTICE_FIELDS} }} userErrors {{ field message code }} }} }}"""
WITHDRAW = f"""mutation($input: WithdrawNoticeInput!) {{ withdrawNotice(input: $input) {{
  notice {{ {NOTICE_FIELDS} }} userErrors {{ field message code }} }} }}"""
MARK_READ = """mutation($input: MarkNoticeReadInput!) { markNoticeRead(input: $input) {
  notice { id readCount totalReads } userErrors { field message code } } }"""
DELETE = """mutation($input: NoticeStepInput!) { deleteNotice(input: $input) {
  deletedId userErrors { field message code } } }"""
LIST = f"""query($slug: String!, $first: Int, $after: String, $filter: NoticeFilter) {{
  village(slug: $slug) {{ notices(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {NOTICE_FIELDS} }} }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Notice { title state } } }"
CREATE_UPLOAD = """mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) {
  upload { key url method headers { name value } } userErrors { field code } } }"""
ATTACH = """mutation($input: AttachFileInput!) { attachFile(input: $input) {
  attachment { id filename contentType } userErrors { field code } } }"""

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CONTENT = {
    "category": "finances",
    "title": "2026年第三季度财务收支公开",
    "body": "本季度村集体收入12.6万元，支出8.3万元，明细见附件。",
}
# The same notice as the API takes it: its enum values upper-case.
API_CONTENT = {**CONTENT, "category": "FINANCES"}


def step_document(name: str) -> str:
    return f"""mutation($input: NoticeStepInput!) {{ {name}(input: $input) {{
      notice {{ {NOTICE_FIELDS} }} userErrors {{ field message code }} }} }}"""


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def mutate(gql, token: str, document: str, input: dict) -> dict:
    _, body = gql(document, token, {"input": input})
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def listed(gql, token: str, slug: str, **variables) -> dict:
    _, body = gql(LIST, token, {"slug": slug, "first": 100, **variables})
    assert "errors" not in body, body
    return body["data"]["village"]["notices"]


def titles(connection: dict) -> list[str]:
    return [edge["node"]["title"] for edge in connection["edges"]]


def key(notice_id: str) -> int:
    return int(decode_id(notice_id).key)


def soon(**delta) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


@pytest.fixture(scope="module")
def module_village(db):
    """One empty village for the module's tests that read only the notices they made."""
    return new_village(db)


@pytest.fixture(scope="module")
def board_village(db):
    """The village of the module's `board`, where nothing else is written."""
    return new_village(db)


@pytest.fixture
def slug(request, module_village) -> str:
    """The module's village, shared one test after another by tests that read only the
    notices they made. The tests of the `board` get its village; a test that lists or
    counts the whole village's notices, reads or files names `village` and gets a fresh
    one of its own."""
    for own in ("board_village", "village"):
        if own in request.fixturenames:
            return request.getfixturevalue(own).slug
    return module_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


@pytest.fixture
def integrator_of(db, token):
    """An integrator (a residents' app) whose client is granted `slug` with `scopes`."""

    def grant(slug: str, *scopes: str) -> str:
        client = f"nt-{uuid.uuid4().hex[:10]}"
        with db.platform() as conn:
            conn.execute(
                insert(pm.api_clients).values(
                    client_id=client, name="居民小程序", villages=[slug], scopes=list(scopes)
                )
            )
        return token("integrator", client=client)

    return grant


@pytest.fixture
def resident_app(integrator_of, slug) -> str:
    return integrator_of(slug, "residents:read", "notices:read")


# -- setup through the actions ------------------------------------------------


def notice_in(db, slug: str, situation: str, **fields) -> int:
    """A notice brought to `situation` through the actions: draft, published, withdrawn,
    or redraft (published, withdrawn and returned to draft)."""
    with db.tenant(slug) as conn:
        notice = actions.do_create_notice(conn, ADMIN, slug, {**CONTENT, **fields})
        notice_id = notice["id"]
        if situation == DRAFT:
            return notice_id
        actions.do_publish_notice(conn, ADMIN, slug, notice_id)
        if situation == PUBLISHED:
            return notice_id
        actions.do_withdraw_notice(conn, ADMIN, slug, notice_id, {"reason": "金额有误"})
        if situation == "redraft":
            actions.do_return_notice_to_draft(conn, ADMIN, slug, notice_id)
    return notice_id


def snapshot(db, slug: str, notice_id: int) -> tuple:
    """Everything a refused step must leave as it was."""
    with db.tenant(slug) as conn:
        row = conn.execute(select(notices).where(notices.c.id == notice_id)).mappings().first()
        outbox_rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        reads = conn.execute(select(func.count()).select_from(notice_reads)).scalar_one()
    with db.platform() as conn:
        audit = conn.execute(
            select(func.count()).where(pm.audit_log.c.village == slug)
        ).scalar_one()
    return dict(row) if row else None, outbox_rows, reads, audit


def audit_actions(db, slug: str) -> list[str]:
    with db.platform() as conn:
        return list(
            conn.execute(
                select(pm.audit_log.c.action)
                .where(pm.audit_log.c.village == slug, pm.audit_log.c.subject_type == "Notice")
                .order_by(pm.audit_log.c.occurred_at)
            ).scalars()
        )


@pytest.fixture
def audited(db, slug):
    """audited() -> the notice audit entries this test wrote."""
    return written_since_now(lambda: audit_actions(db, slug))


def outbox_rows(db, slug: str) -> list[dict]:
    with db.tenant(slug) as conn:
        query = select(outbox).where(outbox.c.record_type == "Notice").order_by(outbox.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


# -- tables -------------------------------------------------------------------


def test_migration_creates_what_the_tables_describe(db, module_village):
    ours = {"notices", "notice_reads"}

    def only_ours(_object, name, type_, _reflected, _compare_to) -> bool:
        return type_ != "table" or name in ours

    with db.tenant(module_village.slug) as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_server_default": False, "include_object": only_ours}
        )
        assert compare_metadata(context, metadata) == []


# -- the flow a village admin meets -------------------------------------------


def test_draft_edit_publish_withdraw_and_publish_again(gql, admin, slug, audited):
    created = mutate(gql, admin, CREATE, {"village": slug, "category": "VILLAGE_AFFAIRS"})
    assert created["userErrors"] == []
    draft = created["notice"]
    assert (draft["state"], draft["title"], draft["body"], draft["version"]) == (
        "DRAFT",
        "",
        "",
        1,
    )
    assert (draft["visible"], draft["readCount"], draft["attachments"]) == (False, 0, [])

    until = soon(days=30).replace(microsecond=0)
    updated = mutate(
        gql,
        admin,
        UPDATE,
        {
            "id": draft["id"],
            "category": "FINANCES",
            "title": "  " + CONTENT["title"] + " ",
            "body": CONTENT["body"],
            "publishUntil": until.isoformat(),
        },
    )
    assert updated["userErrors"] == []
    notice = updated["notice"]
    assert notice["title"] == CONTENT["title"]  # trimmed
    assert (notice["category"], notice["version"]) == ("FINANCES", 2)
    assert datetime.fromisoformat(notice["publishUntil"]) == until

    published = mutate(gql, admin, step_document("publishNotice"), {"id": draft["id"]})
    assert published["userErrors"] == []
    notice = published["notice"]
    assert (notice["state"], notice["visible"], notice["version"]) == ("PUBLISHED", True, 3)
    first_published = datetime.fromisoformat(notice["publishedAt"])
    assert abs(first_published - datetime.now(UTC)) < timedelta(minutes=1)

    withdrawn = mutate(gql, admin, WITHDRAW, {"id": draft["id"], "reason": " 支出明细有误 "})
    notice = withdrawn["notice"]
    assert (notice["state"], notice["visible"], notice["withdrawalReason"]) == (
        "WITHDRAWN",
        False,
        "支出明细有误",
    )
    assert notice["withdrawnAt"] is not None

    redraft = mutate(gql, admin, step_document("returnNoticeToDraft"), {"id": draft["id"]})
    notice = redraft["notice"]
    # Still says when it was published and why it came down, until published again.
    assert (notice["state"], notice["withdrawalReason"]) == ("DRAFT", "支出明细有误")
    assert datetime.fromisoformat(notice["publishedAt"]) == first_published
    corrected = mutate(gql, admin, UPDATE, {"id": draft["id"], "body": "更正后的明细见附件。"})
    assert corrected["notice"]["body"] == "更正后的明细见附件。"

    again = mutate(gql, admin, step_document("publishNotice"), {"id": draft["id"]})["notice"]
    assert (again["state"], again["withdrawnAt"], again["withdrawalReason"]) == (
        "PUBLISHED",
        None,
        None,
    )
    assert again["version"] == 7
    assert audited() == [
        "notice.create",
        "notice.update",
        "notice.publish",
        "notice.withdraw",
        "notice.return_to_draft",
        "notice.update",
        "notice.publish",
    ]


# -- every step from every state -----------------------------------------------

STEPS = {
    "updateNotice": (UPDATE, {"title": "新标题"}),
    "publishNotice": (step_document("publishNotice"), {}),
    "withdrawNotice": (WITHDRAW, {"reason": "信息有误"}),
    "returnNoticeToDraft": (step_document("returnNoticeToDraft"), {}),
    "deleteNotice": (DELETE, {}),
}
# (situation, step) -> the state after it; absent: refused with INVALID_TRANSITION.
ALLOWED = {
    (DRAFT, "updateNotice"): DRAFT,
    (DRAFT, "publishNotice"): PUBLISHED,
    (DRAFT, "deleteNotice"): None,
    (PUBLISHED, "withdrawNotice"): WITHDRAWN,
    (WITHDRAWN, "returnNoticeToDraft"): DRAFT,
    ("redraft", "updateNotice"): DRAFT,
    ("redraft", "publishNotice"): PUBLISHED,
}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("situation", [DRAFT, PUBLISHED, WITHDRAWN, "redraft"])
def test_every_step_from_every_state(gql, admin, slug, db, situation, step):
    notice_id = notice_in(db, slug, situation)
    before = snapshot(db, slug, notice_id)
    document, extra = STEPS[step]
    payload = mutate(gql, admin, document, {"id": encode_id("Notice", slug, notice_id), **extra})
    if (situation, step) not in ALLOWED:
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("id", "INVALID_TRANSITION")
        ]
        assert snapshot(db, slug, notice_id) == before
        return
    assert payload["userErrors"] == []
    after = snapshot(db, slug, notice_id)
    if ALLOWED[(situation, step)] is None:
        assert after[0] is None
    else:
        assert after[0]["state"] == ALLOWED[(situation, step)]
        assert after[0]["version"] == before[0]["version"] + 1
    assert after[3] == before[3] + 1  # one audit entry


def test_refusals_name_the_state_in_chinese(gql, admin, slug, db):
    notice_id = encode_id("Notice", slug, notice_in(db, slug, PUBLISHED))
    payload = mutate(gql, admin, UPDATE, {"id": notice_id, "title": "改"})
    assert payload["userErrors"][0]["message"] == "通知已发布，不能修改；请先撤回并退回草稿"
    payload = mutate(gql, admin, step_document("publishNotice"), {"id": notice_id})
    assert payload["userErrors"][0]["message"] == "通知已发布，不能发布"
    payload = mutate(gql, admin, DELETE, {"id": notice_id})
    assert payload["userErrors"][0]["message"] == "只能删除从未发布过的草稿；已发布的通知请撤回"


# -- input rules ----------------------------------------------------------------


def test_publishing_needs_a_title_a_body_and_a_window_not_yet_ended(gql, admin, slug, db):
    created = mutate(gql, admin, CREATE, {"village": slug, "category": "PARTY_AFFAIRS"})
    notice_id = created["notice"]["id"]
    before = snapshot(db, slug, key(notice_id))
    payload = mutate(gql, admin, step_document("publishNotice"), {"id": notice_id})
    assert payload["userErrors"] == [
        {"field": "title", "message": "发布前请填写标题", "code": "REQUIRED"},
        {"field": "body", "message": "发布前请填写正文", "code": "REQUIRED"},
    ]
    assert snapshot(db, slug, key(notice_id)) == before

    mutate(gql, admin, UPDATE, {"id": notice_id, "title": "   ", "body": "正文"})
    payload = mutate(gql, admin, step_document("publishNotice"), {"id": notice_id})
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("title", "REQUIRED")]

    # A window that has already ended would publish a notice nobody sees.
    mutate(gql, admin, UPDATE, {"id": notice_id, "title": "党员大会通知"})
    with db.tenant(slug) as conn:
        conn.execute(
            notices.update()
            .where(notices.c.id == key(notice_id))
            .values(publish_until=func.now() - timedelta(hours=1))
        )
    before = snapshot(db, slug, key(notice_id))
    payload = mutate(gql, admin, step_document("publishNotice"), {"id": notice_id})
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("publishUntil", "INVALID")]
    assert snapshot(db, slug, key(notice_id)) == before


def test_input_is_checked_and_nothing_written_when_refused(gql, admin, slug, db):
    start = soon(days=2)
    with db.tenant(slug) as conn:
        notices_before = conn.execute(select(func.count()).select_from(notices)).scalar_one()
    cases = [
        ({"title": "长" * 101}, [("title", "INVALID")]),
        ({"body": "字" * 20001}, [("body", "INVALID")]),
        ({"publishFrom": "2026-12-20T09:00:00"}, [("publishFrom", "INVALID")]),
        ({"publishFrom": "not a time"}, [("publishFrom", "INVALID")]),
        (
            {"publishFrom": start.isoformat(), "publishUntil": start.isoformat()},
            [("publishUntil", "INVALID")],
        ),
    ]
    for extra, expected in cases:
        payload = mutate(
            gql, admin, CREATE, {"village": slug, "category": "VILLAGE_AFFAIRS", **extra}
        )
        assert payload["notice"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == expected, extra
    with db.tenant(slug) as conn:
        assert conn.execute(select(func.count()).select_from(notices)).scalar_one() == (
            notices_before
        )

    # A change of one end is checked against the other end as stored.
    notice_id = notice_in(db, slug, DRAFT, publish_from=start.isoformat())
    gid = encode_id("Notice", slug, notice_id)
    before = snapshot(db, slug, notice_id)
    payload = mutate(gql, admin, UPDATE, {"id": gid, "publishUntil": soon(days=1).isoformat()})
    assert payload["userErrors"] == [
        {"field": "publishUntil", "message": "公示截止时间须晚于公示开始时间", "code": "INVALID"}
    ]
    assert snapshot(db, slug, notice_id) == before
    # Clearing an end is a change like any other.
    payload = mutate(gql, admin, UPDATE, {"id": gid, "publishFrom": None})
    assert payload["notice"]["publishFrom"] is None

    _, body = gql(CREATE, admin, {"input": {"village": slug, "category": "weather"}})
    assert first_code(body) == "BAD_USER_INPUT"  # the enum keeps categories to the three

    published = encode_id("Notice", slug, notice_in(db, slug, PUBLISHED))
    for reason, code in [("", "REQUIRED"), ("   ", "REQUIRED"), ("因" * 501, "INVALID")]:
        payload = mutate(gql, admin, WITHDRAW, {"id": published, "reason": reason})
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("reason", code)]


def test_ids_of_another_village_or_type_are_not_found(gql, admin, slug, db, token):
    other = token("village-admin", village="nowhere_village")
    notice_id = encode_id("Notice", slug, notice_in(db, slug, DRAFT))
    _, body = gql(step_document("publishNotice"), other, {"input": {"id": notice_id}})
    assert first_code(body) == "NOT_FOUND"
    for forged in (encode_id("Resident", slug, 1), encode_id("Notice", slug, "x"), "garbage"):
        _, body = gql(step_document("publishNotice"), admin, {"input": {"id": forged}})
        assert first_code(body) == "NOT_FOUND", forged
    payload = mutate(
        gql, admin, step_document("publishNotice"), {"id": encode_id("Notice", slug, 99999)}
    )
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("id", "NOT_FOUND")]


# -- who sees what, and the publish window ----------------------------------------


@pytest.fixture(scope="module")
def board(db, board_village) -> dict[str, int]:
    """One notice in each situation a reader can meet, alone in their village: the tests
    of the board list and count all its notices. They change none of them; the one test
    that adds reads is the only one to count reads or read readCount."""
    slug = board_village.slug
    found = {
        "current": notice_in(db, slug, PUBLISHED, title="现行公告"),
        "scheduled": notice_in(
            db, slug, PUBLISHED, title="定时公告", publish_from=soon(days=1).isoformat()
        ),
        "closing": notice_in(
            db, slug, PUBLISHED, title="即将截止", publish_until=soon(hours=2).isoformat()
        ),
        "ended": notice_in(db, slug, PUBLISHED, title="已过期"),
        "draft": notice_in(db, slug, DRAFT, title="草稿"),
        "withdrawn": notice_in(db, slug, WITHDRAWN, title="已撤回"),
    }
    # Time passes: the window of "ended" closed yesterday. The state stays published.
    with db.tenant(slug) as conn:
        conn.execute(
            notices.update()
            .where(notices.c.id == found["ended"])
            .values(
                publish_from=func.now() - timedelta(days=10),
                publish_until=func.now() - timedelta(days=1),
            )
        )
    return found


def test_each_role_sees_its_share_of_the_board(gql, token, slug, board, resident_app):
    everything = ["已撤回", "草稿", "已过期", "即将截止", "定时公告", "现行公告"]
    for who in (
        token("village-admin", village=slug),
        token("grid-worker", village=slug),
        token("platform-admin"),
    ):
        assert titles(listed(gql, who, slug)) == everything
    coordinator = token("regional-coordinator", region=TEST_REGION)
    seen = listed(gql, coordinator, slug)
    assert titles(seen) == ["已过期", "即将截止", "定时公告", "现行公告"]
    assert [e["node"]["visible"] for e in seen["edges"]] == [False, True, False, True]
    assert {e["node"]["state"] for e in seen["edges"]} == {"PUBLISHED"}
    # Residents' apps: published and inside the window, nothing else, not even by ID.
    seen = listed(gql, resident_app, slug)
    assert titles(seen) == ["即将截止", "现行公告"]
    assert seen["totalCount"] == 2
    for situation in ("scheduled", "ended", "draft", "withdrawn"):
        _, body = gql(NODE, resident_app, {"id": encode_id("Notice", slug, board[situation])})
        assert first_code(body) == "NOT_FOUND", situation
    _, body = gql(NODE, resident_app, {"id": encode_id("Notice", slug, board["current"])})
    assert body["data"]["node"]["title"] == "现行公告"
    _, body = gql(NODE, coordinator, {"id": encode_id("Notice", slug, board["draft"])})
    assert first_code(body) == "NOT_FOUND"


def test_visibility_is_worked_out_from_the_moment_of_reading(db, slug, board):
    def visible_at(moment: datetime) -> set[str]:
        scope = queries.NoticeScope(visible_at=moment)
        with db.tenant(slug) as conn:
            rows = queries.notice_page(
                conn, queries.NoticeFilter(), scope, now=moment, after_id=None, limit=100
            )
        return {row["title"] for row in rows}

    assert visible_at(datetime.now(UTC)) == {"现行公告", "即将截止"}
    assert visible_at(soon(days=1, minutes=1)) == {"现行公告", "定时公告"}
    assert visible_at(soon(days=-5)) == {"现行公告", "即将截止", "已过期"}


def test_filters_and_newest_first_pages(gql, admin, slug, board):
    drafts = listed(gql, admin, slug, filter={"state": "DRAFT"})
    assert titles(drafts) == ["草稿"]
    finances = listed(gql, admin, slug, filter={"category": "FINANCES", "state": "PUBLISHED"})
    assert finances["totalCount"] == 4
    first = listed(gql, admin, slug, first=4)
    assert first["pageInfo"]["hasNextPage"] is True
    rest = listed(gql, admin, slug, first=4, after=first["pageInfo"]["endCursor"])
    assert titles(first) + titles(rest) == [
        "已撤回",
        "草稿",
        "已过期",
        "即将截止",
        "定时公告",
        "现行公告",
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    _, body = gql(LIST, admin, {"slug": slug, "first": 101})
    assert first_code(body) == "BAD_USER_INPUT"


def test_only_the_village_admins_manage_notices(gql, token, slug, db, resident_app):
    draft = encode_id("Notice", slug, notice_in(db, slug, DRAFT))
    before = snapshot(db, slug, key(draft))
    refused = {
        "grid-worker": token("grid-worker", village=slug),
        "regional-coordinator": token("regional-coordinator", region=TEST_REGION),
        "resident app": resident_app,
    }
    for who, caller in refused.items():
        _, body = gql(CREATE, caller, {"input": {"village": slug, "category": "FINANCES"}})
        assert first_code(body) == "FORBIDDEN", who
        for name, (document, extra) in STEPS.items():
            _, body = gql(document, caller, {"input": {"id": draft, **extra}})
            assert first_code(body) == "FORBIDDEN", (who, name)
    outsider = token("village-admin", village="nowhere_village")
    _, body = gql(CREATE, outsider, {"input": {"village": slug, "category": "FINANCES"}})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(LIST, outsider, {"slug": slug})
    assert first_code(body) == "NOT_FOUND"
    assert snapshot(db, slug, key(draft)) == before

    platform = token("platform-admin")
    payload = mutate(gql, platform, step_document("publishNotice"), {"id": draft})
    assert payload["notice"]["state"] == "PUBLISHED"


def test_integrators_need_notices_read_and_a_village_they_reach(
    gql, integrator_of, slug, db, board
):
    current = encode_id("Notice", slug, board["current"])
    device_platform = integrator_of(slug, "residents:read")
    _, body = gql(LIST, device_platform, {"slug": slug})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(NODE, device_platform, {"id": current})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(MARK_READ, device_platform, {"input": {"notice": current, "reader": "u1"}})
    assert first_code(body) == "FORBIDDEN"
    # notices:read alone does not reach a village: reach still comes with residents:read.
    notices_only = integrator_of(slug, "notices:read")
    _, body = gql(LIST, notices_only, {"slug": slug})
    assert first_code(body) == "NOT_FOUND"


def test_access_rule_for_notices_read(db, slug):
    client = f"nt-rule-{slug}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client,
                name="规则测试",
                villages=[slug, "no_such_village"],
                scopes=["residents:read", "notices:read"],
            )
        )
        principal = Principal(
            "svc", None, frozenset({"integrator"}), frozenset(), frozenset(), client
        )
        access = resolve_access(conn, principal)
        assert access.notice_readers == frozenset({slug}) == access.readable
        # Not an integrator: a client's grant means nothing.
        admin = replace(principal, roles=frozenset({"village-admin"}))
        assert resolve_access(conn, admin).notice_readers == frozenset()
        conn.execute(
            pm.api_clients.update()
            .where(pm.api_clients.c.client_id == client)
            .values(enabled=False)
        )
        assert resolve_access(conn, principal).notice_readers == frozenset()


# -- read counts ---------------------------------------------------------------------


def test_reads_count_distinct_readers_and_every_read(
    gql, slug, db, board, resident_app, integrator_of, admin
):
    current = encode_id("Notice", slug, board["current"])

    def read(app: str, reader: str, notice: str = current) -> dict:
        return mutate(gql, app, MARK_READ, {"notice": notice, "reader": reader})

    assert read(resident_app, "wx-user-1")["notice"] == {
        "id": current,
        "readCount": 1,
        "totalReads": 1,
    }
    read(resident_app, "wx-user-1")
    read(resident_app, " wx-user-2 ")
    counted = read(resident_app, "wx-user-2")["notice"]
    assert (counted["readCount"], counted["totalReads"]) == (2, 4)
    # Another app's user 1 is another person.
    other_app = integrator_of(slug, "residents:read", "notices:read")
    assert read(other_app, "wx-user-1")["notice"]["readCount"] == 3
    seen = {e["node"]["id"]: e["node"] for e in listed(gql, admin, slug)["edges"]}
    assert (seen[current]["readCount"], seen[current]["totalReads"]) == (3, 5)

    # Stored as a hash keyed per notice: the same reader looks different on another notice.
    closing = encode_id("Notice", slug, board["closing"])
    read(resident_app, "wx-user-1", closing)
    with db.tenant(slug) as conn:
        rows = conn.execute(select(notice_reads)).mappings().all()
    assert all(b"wx-user" not in row["reader_hash"] for row in rows)
    assert len({row["reader_hash"] for row in rows}) == len(rows) == 4

    # Only what residents see now can be read; a bad reader is refused; nothing is written.
    before = snapshot(db, slug, board["current"])
    for situation in ("scheduled", "ended", "draft", "withdrawn"):
        payload = read(resident_app, "wx-user-1", encode_id("Notice", slug, board[situation]))
        assert payload["userErrors"] == [
            {"field": "notice", "message": "通知不存在或不在公示期内", "code": "NOT_FOUND"}
        ]
    for reader, code in [("", "REQUIRED"), ("  ", "REQUIRED"), ("x" * 201, "INVALID")]:
        payload = read(resident_app, reader)
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("reader", code)]
    assert snapshot(db, slug, board["current"]) == before

    # Staff do not add reads.
    _, body = gql(MARK_READ, admin, {"input": {"notice": current, "reader": "me"}})
    assert first_code(body) == "FORBIDDEN"
    assert audit_actions(db, slug).count("notice.mark_read") == 6


# -- outbox ---------------------------------------------------------------------------


def test_publish_and_withdraw_are_shared_edits_and_drafts_are_not(gql, admin, slug, db):
    notice_id = notice_in(db, slug, DRAFT)

    def ours() -> list[dict]:
        """The village's Notice entries about this test's notice."""
        return [r for r in outbox_rows(db, slug) if r["record_id"] == notice_id]

    assert ours() == []
    gid = encode_id("Notice", slug, notice_id)
    mutate(gql, admin, step_document("publishNotice"), {"id": gid})
    mutate(gql, admin, WITHDRAW, {"id": gid, "reason": "内容有误"})
    mutate(gql, admin, step_document("returnNoticeToDraft"), {"id": gid})
    mutate(gql, admin, UPDATE, {"id": gid, "title": "更正：" + CONTENT["title"]})
    mutate(gql, admin, step_document("publishNotice"), {"id": gid})
    rows = ours()
    assert [(r["operation"], r["version"]) for r in rows] == [
        ("upsert", 2),
        ("delete", 3),
        ("upsert", 6),
    ]
    assert rows[0]["record_id"] == rows[2]["record_id"] == notice_id
    payload = rows[2]["payload"]
    assert payload["title"] == "更正：" + CONTENT["title"]
    assert set(payload) == {
        "id",
        "category",
        "title",
        "body",
        "publish_from",
        "publish_until",
        "published_at",
    }
    assert rows[1]["payload"] == {}


# -- attachments -------------------------------------------------------------------


def upload_pdf(gql, client, token: str, slug: str, data: bytes = PDF) -> str:
    """createUploadUrl, then the PUT a phone or browser would send (here through the
    application, which serves the local backend's presigned URLs)."""
    ticket = mutate(
        gql,
        token,
        CREATE_UPLOAD,
        {
            "village": slug,
            "purpose": "NOTICE_ATTACHMENT",
            "filename": "财务收支明细.pdf",
            "contentType": "application/pdf",
            "size": len(data),
        },
    )["upload"]
    url = urlsplit(ticket["url"])
    response = client.put(
        f"{url.path}?{url.query}",
        data=data,
        headers={h["name"]: h["value"] for h in ticket["headers"]},
    )
    assert response.status_code == 200, response.data
    return ticket["key"]


def attach(gql, token: str, slug: str, upload_key: str, notice_id: str) -> dict:
    return mutate(
        gql,
        token,
        ATTACH,
        {"village": slug, "key": upload_key, "recordType": "Notice", "recordId": notice_id},
    )


def test_pdf_attachments_on_the_local_disk(gql, client, admin, slug, db, resident_app, village):
    """A fresh village: the residents' app lists every notice the village shows."""
    draft = mutate(gql, admin, CREATE, {"village": slug, **API_CONTENT})["notice"]["id"]
    attached = attach(gql, admin, slug, upload_pdf(gql, client, admin, slug), draft)
    assert attached["userErrors"] == []
    assert attached["attachment"]["contentType"] == "application/pdf"
    mutate(gql, admin, step_document("publishNotice"), {"id": draft})

    # The residents' app sees the published notice with its PDF, through a short-lived URL.
    [node] = [e["node"] for e in listed(gql, resident_app, slug)["edges"]]
    [pdf] = node["attachments"]
    assert (pdf["filename"], pdf["size"]) == ("财务收支明细.pdf", len(PDF))
    url = urlsplit(pdf["url"])
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 200
    assert response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"

    # What residents were shown does not change: no files for a published notice.
    late = attach(gql, admin, slug, upload_pdf(gql, client, admin, slug), draft)
    assert late["userErrors"] == [{"field": "recordId", "code": "NOT_FOUND"}]
    # Only PDFs: a photo is refused before any upload.
    refused = mutate(
        gql,
        admin,
        CREATE_UPLOAD,
        {
            "village": slug,
            "purpose": "NOTICE_ATTACHMENT",
            "filename": "照片.jpg",
            "contentType": "image/jpeg",
            "size": 1000,
        },
    )
    assert refused["userErrors"] == [{"field": "contentType", "code": "INVALID"}]


DETACH = """mutation($id: ID!) { detachFile(input: {id: $id}) {
  detachedId userErrors { field code } } }"""


def test_a_notices_files_are_reached_as_the_notice_is(
    gql, client, admin, token, slug, db, integrator_of, resident_app, village
):
    """Attachment IDs are sequential: `node(id)`, attachFile and detachFile keep to
    who sees the notice and who manages it, and to drafts for changes. A fresh village:
    it reads every attachment of the village."""
    draft = mutate(gql, admin, CREATE, {"village": slug, **API_CONTENT})["notice"]["id"]
    pdf = attach(gql, admin, slug, upload_pdf(gql, client, admin, slug), draft)["attachment"]
    worker = token("grid-worker", village=slug)
    callers = {
        "admin": admin,
        "grid worker": worker,
        "coordinator": token("regional-coordinator", region=TEST_REGION),
        "residents' app": resident_app,
        "device platform": integrator_of(slug, "residents:read"),
    }

    def seen_by() -> set[str]:
        seen = set()
        for who, caller in callers.items():
            _, body = gql(NODE, caller, {"id": pdf["id"]})
            if "errors" in body:
                assert first_code(body) == "NOT_FOUND", who
            else:
                seen.add(who)
        return seen

    # A draft's PDF is for the village's staff only, as the draft itself.
    assert seen_by() == {"admin", "grid worker"}
    # Grid workers read notices but do not manage them, nor their files.
    _, body = gql(
        ATTACH,
        worker,
        {
            "input": {
                "village": slug,
                "key": upload_pdf(gql, client, worker, slug),
                "recordType": "Notice",
                "recordId": draft,
            }
        },
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(DETACH, worker, {"id": pdf["id"]})
    assert first_code(body) == "FORBIDDEN"
    with db.tenant(slug) as conn:
        assert conn.execute(select(m.attachments.c.status)).scalars().all() == ["active"]

    # Published: whoever sees the notice sees its PDF; no one changes it any more.
    mutate(gql, admin, step_document("publishNotice"), {"id": draft})
    assert seen_by() == {"admin", "grid worker", "coordinator", "residents' app"}
    _, body = gql(DETACH, worker, {"id": pdf["id"]})
    assert first_code(body) == "FORBIDDEN"
    for caller in (admin, token("platform-admin")):
        _, body = gql(DETACH, caller, {"id": pdf["id"]})
        assert body["data"]["detachFile"] == {
            "detachedId": None,
            "userErrors": [{"field": "id", "code": "INVALID_TRANSITION"}],
        }
    assert "residents' app" in seen_by()

    # Back to a draft, its admin takes the file off.
    mutate(gql, admin, WITHDRAW, {"id": draft, "reason": "附件有误"})
    mutate(gql, admin, step_document("returnNoticeToDraft"), {"id": draft})
    _, body = gql(DETACH, admin, {"id": pdf["id"]})
    assert body["data"]["detachFile"] == {"detachedId": pdf["id"], "userErrors": []}
    assert seen_by() == set()


def test_deleting_a_draft_marks_its_files_for_removal(gql, client, admin, slug, db, village):
    """A fresh village: it counts every notice and attachment of the village."""
    draft = mutate(gql, admin, CREATE, {"village": slug, **API_CONTENT})["notice"]["id"]
    attach(gql, admin, slug, upload_pdf(gql, client, admin, slug), draft)
    payload = mutate(gql, admin, DELETE, {"id": draft})
    assert payload == {"deletedId": draft, "userErrors": []}
    with db.tenant(slug) as conn:
        statuses = conn.execute(select(m.attachments.c.status)).scalars().all()
        assert conn.execute(select(func.count()).select_from(notices)).scalar_one() == 0
    assert statuses == ["removing"]
    assert audit_actions(db, slug)[-1] == "notice.delete"
    _, body = gql(NODE, admin, {"id": draft})
    assert first_code(body) == "NOT_FOUND"


def test_pdf_attachments_in_minio(settings, minio, village, tmp_path):
    """The same flow against a real MinIO: the PUT and the GET go to MinIO itself."""
    configured = replace(
        settings,
        var_dir=tmp_path,
        s3_endpoint=minio.endpoint,
        s3_access_key=minio.access_key,
        s3_secret_key=minio.secret_key,
    )
    app = create_app(configured)
    client = app.test_client()
    slug = village.slug

    def gql(query: str, token: str, variables: dict | None = None):
        response = client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.status_code, response.get_json()

    try:
        admin = mint_for_role(configured, "village-admin", village=slug)
        draft = mutate(gql, admin, CREATE, {"village": slug, **API_CONTENT})["notice"]["id"]
        ticket = mutate(
            gql,
            admin,
            CREATE_UPLOAD,
            {
                "village": slug,
                "purpose": "NOTICE_ATTACHMENT",
                "filename": "公示.pdf",
                "contentType": "application/pdf",
                "size": len(PDF),
            },
        )["upload"]
        headers = {h["name"]: h["value"] for h in ticket["headers"]}
        assert requests.put(ticket["url"], data=PDF, headers=headers, timeout=30).ok
        assert attach(gql, admin, slug, ticket["key"], draft)["userErrors"] == []
        notice = mutate(gql, admin, step_document("publishNotice"), {"id": draft})["notice"]
        [pdf] = notice["attachments"]
        assert pdf["url"].startswith(minio.endpoint)
        response = requests.get(pdf["url"], timeout=30)
        assert response.content == PDF
        assert response.headers["Content-Type"] == "application/pdf"
    finally:
        runtime_of(app).db.dispose()


# -- statement count -----------------------------------------------------------------


def fill_board(db, slug: str, count: int) -> None:
    """`count` published notices, each with a PDF row and two readers."""
    reader = Actor(
        Principal("app", None, frozenset({"integrator"}), frozenset(), frozenset(), "app")
    )
    with db.tenant(slug) as conn:
        for number in range(count):
            notice = actions.do_create_notice(
                conn, ADMIN, slug, {**CONTENT, "title": f"公告{number}"}
            )
            actions.do_publish_notice(conn, ADMIN, slug, notice["id"])
            conn.execute(
                insert(m.attachments).values(
                    record_type="Notice",
                    record_id=str(notice["id"]),
                    purpose="notice_attachment",
                    object_key=f"files/notice_attachment/{number}.pdf",
                    filename=f"附件{number}.pdf",
                    content_type="application/pdf",
                    size=len(PDF),
                    uploaded_by="notice-admin",
                )
            )
            for who in ("r1", "r2"):
                actions.do_mark_notice_read(conn, reader, slug, notice["id"], {"reader": who})


def test_notice_list_statement_count_is_pinned_and_flat(
    app, gql, token, slug, db, resident_app, village
):
    """A fresh village: every notice listed must be one of the 50 filled here."""
    fill_board(db, slug, 50)
    engine = app.extensions["villagelink"].db.engine

    def run(caller: str, first: int) -> list[str]:
        with count_statements(engine) as statements:
            _, body = gql(LIST.replace("totalCount ", ""), caller, {"slug": slug, "first": first})
        assert "errors" not in body, body
        connection = body["data"]["village"]["notices"]
        assert len(connection["edges"]) == first
        assert all(e["node"]["readCount"] == 2 for e in connection["edges"])
        assert all(len(e["node"]["attachments"]) == 1 for e in connection["edges"])
        return statements

    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, read counts, attachments (an integrator's grant is part of its kept reach)
    for caller, expected in ((token("village-admin", village=slug), 4), (resident_app, 4)):
        run(caller, 1)  # warm the pool: pre-ping is not ours to count
        five, fifty = run(caller, 5), run(caller, 50)
        assert len(five) == len(fifty) == expected, "\n".join(fifty)
