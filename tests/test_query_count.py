"""N+1 guard: the statements behind the main queries are pinned, and do not grow with the page."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import delete, event, insert, update

from villagelink.platform import models as pm
from villagelink.platform.db import Database

LIST_WITH_HOUSEHOLD_AND_GRID = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  residents(first: $first) { edges { node { id name age idNumber phone tags { tag }
    household { id address building } grid { id name level } } } } } }"""
HOUSEHOLDS_WITH_MEMBERS = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  households(first: $first) { edges { node { id address head { name } members { name }
    grid { code parent { code } staff { name tier } } } } } } }"""
STAFF_WITH_GRIDS = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  staff(first: $first) { edges { node { id name tier accountUsername grids { code } } } } } }"""
API_CLIENTS = "{ apiClients { clientId name scopes villages enabled lastUsedAt } }"

BUILDINGS_WITH_GRIDS = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  buildings(first: $first) { totalCount edges { node { id name units grid { code
    parent { code } staff { name } } } } } } }"""


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


def run(app, gql, admin, query, slug, first) -> list[str]:
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        status, body = gql(query, admin, {"slug": slug, "first": first})
    assert status == 200 and "errors" not in body, body
    return statements


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # The caller's reach and villages come from the token's first request
        # (platform/identity/callers.py); the village transaction's first statement
        # checks the access epoch as it sets the role and path.
        # role, path and epoch; the page with its households and grids, tags
        (LIST_WITH_HOUSEHOLD_AND_GRID, 3),
        # role, path and epoch; the page, heads with their grids (the households'),
        # members, parent grids, staff
        (HOUSEHOLDS_WITH_MEMBERS, 6),
        # role, path and epoch; the page, the grids of its staff
        (STAFF_WITH_GRIDS, 3),
        # the clients (a platform list: no village transaction), the epoch at the end
        (API_CLIENTS, 2),
        # role, path and epoch; the page, the count, grids, staff, parent grids
        (BUILDINGS_WITH_GRIDS, 6),
    ],
)
def test_statement_count_is_pinned_and_flat(app, gql, token, demo_region, query, expected):
    admin = token("village-admin", village="liulin")
    run(app, gql, admin, query, "liulin", 1)  # warm the pool and the caller's kept reach
    five = run(app, gql, admin, query, "liulin", 5)
    fifty = run(app, gql, admin, query, "liulin", 50)
    assert len(five) == len(fifty) == expected, "\n".join(fifty)


NAMES_AND_AGES = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  residents(first: $first, filter: {ageMin: 80}) { edges { node { id name age } } } } }"""
PLACES_IN_A_FRAGMENT = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  residents(first: $first) { edges { ...Placed } } } }
fragment Placed on ResidentEdge { node { ... on Resident { name household { address } } } }"""


def test_a_page_joins_the_places_only_when_its_nodes_show_them(app, gql, token, demo_region):
    """The households, buildings and grids joined into a resident page's one statement are
    read only when the nodes ask for a household or grid, however the document asks."""
    admin = token("village-admin", village="liulin")
    run(app, gql, admin, NAMES_AND_AGES, "liulin", 1)

    def page(statements: list[str]) -> str:
        (read,) = [s for s in statements if "FROM residents" in s and "LIMIT" in s]
        return read

    names = run(app, gql, admin, NAMES_AND_AGES, "liulin", 10)
    assert "JOIN" not in page(names), page(names)
    placed = run(app, gql, admin, PLACES_IN_A_FRAGMENT, "liulin", 10)
    assert "JOIN households" in page(placed), page(placed)
    # role, path and epoch; the page with its households, and no reading of them after
    assert len(names) == len(placed) == 2, "\n".join(placed)


# The three reads of the race against PostGraphile (bench/race/race.py).
RACE_PAGE = """query($slug: String!) { village(slug: $slug) { residents(first: 50) { edges {
  node { id name gender birthDate age household { id address } grid { id name } } } } } }"""
RACE_ELDERLY = """query($slug: String!) { village(slug: $slug) {
  residents(first: 10, filter: {ageMin: 80}) { edges { node { id name gender birthDate } } } } }"""
RACE_ONE = """query($id: ID!) { node(id: $id) { ... on Resident {
  id name gender birthDate household { id address } grid { id name } } } }"""


@contextmanager
def count_checkouts(engine):
    checkouts: list[object] = []

    def checkout(dbapi_connection, *_args):
        checkouts.append(dbapi_connection)

    event.listen(engine, "checkout", checkout)
    try:
        yield checkouts
    finally:
        event.remove(engine, "checkout", checkout)


def race_reads(gql, admin) -> list[tuple[str, str, dict]]:
    _, body = gql(RACE_PAGE, admin, {"slug": "liulin"})
    first = body["data"]["village"]["residents"]["edges"][0]["node"]["id"]
    return [
        # the role, path and access epoch; the page with its households and grids
        ("page", RACE_PAGE, {"slug": "liulin"}),
        # the role, path and access epoch; the page
        ("elderly", RACE_ELDERLY, {"slug": "liulin"}),
        # the role, path and access epoch; the resident with the household and grid
        ("one", RACE_ONE, {"id": first}),
    ]


@pytest.mark.parametrize(("read", "expected"), [("page", 2), ("elderly", 2), ("one", 2)])
def test_a_repeated_read_is_one_transaction_on_one_connection(
    app, gql, token, demo_region, read, expected
):
    """A caller's second read takes their reach as kept with the token: no platform
    transaction, one pooled connection, the village's statements only."""
    admin = token("village-admin", village="liulin")
    _, query, variables = next(r for r in race_reads(gql, admin) if r[0] == read)
    engine = app.extensions["villagelink"].db.engine
    with count_statements(engine) as statements, count_checkouts(engine) as checkouts:
        status, body = gql(query, admin, variables)
    assert status == 200 and "errors" not in body, body
    assert len(checkouts) == 1
    assert len(statements) == expected, "\n".join(statements)
    assert "access_epoch" in statements[0] and "set_config('role'" in statements[0]


def test_a_kept_reach_gives_way_to_a_withdrawn_grant(app, db, gql, token, demo_region):
    """The integrator's token is the same before and after its grant is withdrawn: the
    read after the withdrawal commits no longer finds the village."""
    client = f"race-{uuid.uuid4().hex[:10]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client, name="缓存测试", villages=["liulin"], scopes=["residents:read"]
            )
        )
    integrator = token("integrator", client=client)
    try:
        for _ in range(2):  # the second from the kept reach
            status, body = gql(RACE_ELDERLY, integrator, {"slug": "liulin"})
            assert status == 200 and body["data"]["village"]["residents"]["edges"], body
        with db.platform() as conn:
            conn.execute(
                update(pm.api_clients)
                .where(pm.api_clients.c.client_id == client)
                .values(villages=[])
            )
        status, body = gql(RACE_ELDERLY, integrator, {"slug": "liulin"})
        assert body["data"] is None or body["data"]["village"] is None, body
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
        # A read that opens no village transaction checks the epoch at its end.
        with db.platform() as conn:
            conn.execute(
                update(pm.api_clients)
                .where(pm.api_clients.c.client_id == client)
                .values(villages=["liulin"])
            )
        status, body = gql("{ villages { slug } }", integrator)
        assert [v["slug"] for v in body["data"]["villages"]] == ["liulin"], body
    finally:
        with db.platform() as conn:
            conn.execute(delete(pm.api_clients).where(pm.api_clients.c.client_id == client))


def drop_pooled_connections(engine, db) -> list[int]:
    """Terminate the backends of every connection idle in `engine`'s pool (a restart)."""
    held = [engine.connect() for _ in range(engine.pool.checkedin())]
    pooled = [conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for conn in held]
    for conn in held:
        conn.rollback()
        conn.close()
    with db.platform() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM unnest(%(pids)s::int[]) AS pid",
            {"pids": pooled},
        )
    return pooled


@pytest.fixture
def direct_app(app, settings):
    """The app connected to PostgreSQL itself: behind PgBouncer a server that drops its
    connections drops PgBouncer's, which opens others, and the app's survive."""
    runtime = app.extensions["villagelink"]
    pooled = runtime.db
    runtime.db = Database(settings.database_direct_url)
    try:
        yield app
    finally:
        runtime.db.dispose()
        runtime.db = pooled


def test_a_read_on_a_connection_the_server_dropped_begins_again(
    direct_app, db, gql, token, demo_region
):
    """No ping on the hot path: when the server has dropped the pooled connections (a
    restart), the read's first statement fails, and its transaction begins once more. A
    platform transaction (here a new token's reach) pings its connection first."""
    engine = direct_app.extensions["villagelink"].db.engine
    gql(RACE_ELDERLY, token("village-admin", village="liulin"), {"slug": "liulin"})
    drop_pooled_connections(engine, db)
    admin = token("village-admin", village="liulin")
    status, body = gql(RACE_ELDERLY, admin, {"slug": "liulin"})
    assert status == 200 and body["data"]["village"]["residents"]["edges"], body
    pooled = drop_pooled_connections(engine, db)
    with count_statements(engine) as statements:
        status, body = gql(RACE_ELDERLY, admin, {"slug": "liulin"})
    assert status == 200 and body["data"]["village"]["residents"]["edges"], body
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() not in pooled
    # The failed first statement, then the transaction on a new connection.
    assert len(statements) == 3, "\n".join(statements)


@pytest.mark.parametrize("filtered", [False, True])
def test_a_page_s_statement_is_planned_once_not_on_every_read(db, demo_region, filtered):
    """Its LIMIT is written into its text (`limit_of`): with a bound LIMIT PostgreSQL
    rated the prepared statement's generic plan for the worst case and planned the page
    again on every execution, which was most of its cost in the database."""
    from datetime import date

    from villagelink.tenants.residents import queries

    flt = queries.ResidentFilter(age_min=80) if filtered else queries.ResidentFilter()
    with db.tenant("liulin") as conn, count_statements(db.engine) as statements:
        # psycopg prepares a statement on its fifth execution; PostgreSQL plans its first
        # five executions as prepared for their values, then keeps to one plan if it can.
        for _ in range(15):
            queries.placed_resident_page(
                conn, flt, allowed_grids=None, after_id=None, limit=51, today=date.today()
            )
        plans = conn.exec_driver_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%FROM residents LEFT OUTER JOIN households%%' "
            "AND (statement LIKE '%%residents.birth_date <=%%') = %(filtered)s",
            {"filtered": filtered},
        ).all()
    assert "LIMIT 51" in statements[0]
    assert len(plans) == 1 and plans[0].generic_plans >= 5, plans
