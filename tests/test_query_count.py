"""N+1 guard: the statements behind the main queries are pinned, and do not grow with the page."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

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
        # caller's access, caller's villages, SET LOCAL ROLE, the page, tags, households, grids
        (LIST_WITH_HOUSEHOLD_AND_GRID, 7),
        # access, villages, SET LOCAL ROLE, the page, grids, heads, members, parent grids, staff
        (HOUSEHOLDS_WITH_MEMBERS, 9),
        # access, villages, SET LOCAL ROLE, the page, the grids of its staff
        (STAFF_WITH_GRIDS, 5),
        # access, villages, the clients (a platform list: no village transaction)
        (API_CLIENTS, 3),
        # access, villages, SET LOCAL ROLE, the page, the count, grids, staff, parent grids
        (BUILDINGS_WITH_GRIDS, 8),
    ],
)
def test_statement_count_is_pinned_and_flat(app, gql, token, demo_region, query, expected):
    admin = token("village-admin", village="liulin")
    run(app, gql, admin, query, "liulin", 1)  # warm the pool: pre-ping is not ours to count
    five = run(app, gql, admin, query, "liulin", 5)
    fifty = run(app, gql, admin, query, "liulin", 50)
    assert len(five) == len(fifty) == expected, "\n".join(fifty)
