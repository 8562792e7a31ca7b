"""Hostile input, each class generated rather than listed: global IDs spelled any way but
the one, strings PostgreSQL refuses, numbers out of range, HTTP bodies the parser trips on,
error pages on every path, and the CORS policy."""

from __future__ import annotations

import base64
import json
import sys
import unicodedata
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from villagelink.graphql.core.ids import BIGINT_MAX, decode_id, encode_id
from villagelink.graphql.core.text import REFUSED_MESSAGE, refused_variables
from villagelink.graphql.gateway import MAX_JSON_DEPTH, HttpFailure, read_json
from villagelink.tenants import models as m

# Fixed seed and no shrinking database: the same inputs on every run, fast.
generated = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NODE = "query($id: ID!) { node(id: $id) { id ... on Resident { name } } }"
RESIDENTS = """query($slug: String!, $filter: ResidentFilter) {
  village(slug: $slug) { residents(first: 100, filter: $filter) { totalCount } } }"""
UPDATE = """mutation($input: UpdateResidentInput!) { updateResident(input: $input) {
  resident { id name } userErrors { field message code } } }"""
MOVE = """mutation($input: MoveResidentToHouseholdInput!) { moveResidentToHousehold(input: $input) {
  resident { id } userErrors { field code } } }"""
CREATE = """mutation($input: CreateResidentInput!) { createResident(input: $input) {
  resident { id } userErrors { field message code } } }"""


@pytest.fixture
def slug(populated_village) -> str:
    return populated_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


@pytest.fixture
def rows(db, slug) -> dict:
    """A resident, a household other than theirs, and a grid with residents."""
    r = m.residents
    with db.tenant(slug) as conn:
        resident = conn.execute(select(r).order_by(r.c.id).limit(1)).mappings().one()
        household = conn.execute(
            select(m.households.c.id)
            .where(m.households.c.id != resident["household_id"])
            .order_by(m.households.c.id)
            .limit(1)
        ).scalar_one()
        count = conn.execute(select(func.count()).select_from(r)).scalar_one()
    return {
        "resident": resident,
        "household": household,
        "grid": resident["grid_id"],
        "count": count,
    }


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", ())]


# -- 1. global IDs have one spelling --------------------------------------------------

# Every decimal digit zero of Unicode but ASCII's ("٠", "०", "０", ...): `int` reads them all.
OTHER_ZEROS = [
    chr(c)
    for c in range(sys.maxunicode + 1)
    if unicodedata.category(chr(c)) == "Nd" and unicodedata.decimal(chr(c)) == 0 and c != 0x30
]


def other_spellings(key: int) -> st.SearchStrategy[str]:
    """Spellings of `key` that are not its canonical one, or keys beyond bigint."""
    digits = str(key)
    return st.one_of(
        # Another script's digits, all or some of them.
        st.sampled_from(OTHER_ZEROS).map(
            lambda zero: "".join(chr(ord(zero) + int(d)) for d in digits)
        ),
        st.text("0", min_size=1, max_size=5).map(lambda zeros: zeros + digits),
        st.sampled_from(["+", "-", " ", "\t"]).map(lambda sign: sign + digits),
        st.sampled_from([" ", "\n", "_0"]).map(lambda tail: digits + tail),
        # Digits `str.isdigit` takes that `int` refuses.
        st.text("²³¹⁰⁴⁵⁶⁷⁸⁹①", min_size=1, max_size=4),
        st.integers(BIGINT_MAX + 1, 2**200).map(str),
    )


def respelled(value: str) -> st.SearchStrategy[str]:
    """The same bytes as another base64 text: padded, or with what decoding skips."""
    return st.one_of(
        st.just(value + "=" * (-len(value) % 4 or 4)),
        st.tuples(st.integers(0, len(value)), st.sampled_from(["\n", " ", "!", "*", "="])).map(
            lambda cut: value[: cut[0]] + cut[1] + value[cut[0] :]
        ),
    )


def test_the_canonical_id_still_resolves(gql, admin, slug, rows):
    resident = rows["resident"]
    _, body = gql(NODE, admin, {"id": encode_id("Resident", slug, resident["id"])})
    assert body["data"]["node"]["name"] == resident["name"]


def test_ids_of_another_spelling_are_not_found_wherever_they_are_read(gql, admin, slug, rows):
    resident, household, grid = rows["resident"], rows["household"], rows["grid"]
    canonical = encode_id("Resident", slug, resident["id"])

    @generated
    @given(
        st.one_of(
            other_spellings(resident["id"]).map(lambda key: encode_id("Resident", slug, key)),
            respelled(canonical),
        ),
        other_spellings(household).map(lambda key: encode_id("Household", slug, key)),
        other_spellings(grid).map(lambda key: encode_id("Grid", slug, key)),
    )
    def check(resident_id, household_id, grid_id):
        # node
        _, body = gql(NODE, admin, {"id": resident_id})
        assert body["data"] == {"node": None} and codes(body) == ["NOT_FOUND"], body
        # mutation target
        _, body = gql(UPDATE, admin, {"input": {"id": resident_id, "name": "改名"}})
        assert codes(body) == ["NOT_FOUND"], body
        # mutation input
        _, body = gql(MOVE, admin, {"input": {"resident": canonical, "household": household_id}})
        payload = body["data"]["moveResidentToHousehold"]
        assert payload["userErrors"] == [{"field": "household", "code": "NOT_FOUND"}], body
        # filter: matches nothing, as an ID of another village would
        _, body = gql(RESIDENTS, admin, {"slug": slug, "filter": {"grid": grid_id}})
        assert body["data"]["village"]["residents"]["totalCount"] == 0, body

    check()


def test_a_cursor_has_one_spelling_too(gql, admin, slug, rows):
    query = """query($slug: String!, $after: String) { village(slug: $slug) {
      residents(first: 1, after: $after) { totalCount } } }"""

    @generated
    @given(other_spellings(rows["resident"]["id"]))
    def check(key):
        after = base64.urlsafe_b64encode(f"id:{key}".encode()).decode()
        _, body = gql(query, admin, {"slug": slug, "after": after})
        assert codes(body) == ["BAD_USER_INPUT"], body

    check()


# -- 2. strings PostgreSQL refuses -----------------------------------------------------

REFUSED = st.sampled_from(["\x00", *map(chr, (0xD800, 0xDBFF, 0xDC00, 0xDFFF))])


def refused_text() -> st.SearchStrategy[str]:
    """Text with at least one NUL or lone surrogate somewhere in it."""
    return st.tuples(st.text(max_size=10), REFUSED, st.text(max_size=10)).map("".join)


def test_refused_characters_in_variables_are_bad_user_input(gql, admin, slug, db, rows):
    resident = rows["resident"]
    canonical = encode_id("Resident", slug, resident["id"])

    @generated
    @given(refused_text(), st.sampled_from(["input", "filter", "village"]))
    def check(text, where):
        if where == "input":
            status, body = gql(UPDATE, admin, {"input": {"id": canonical, "name": text}})
        elif where == "filter":
            status, body = gql(RESIDENTS, admin, {"slug": slug, "filter": {"name": text}})
        else:
            status, body = gql(
                CREATE, admin, {"input": {"village": text, "name": "张三", "idNumber": "1"}}
            )
        assert status < 500 and codes(body) == ["BAD_USER_INPUT"], body
        assert "data" not in body  # refused before anything ran

    check()
    with db.tenant(slug) as conn:
        name = conn.execute(select(m.residents.c.name).where(m.residents.c.id == resident["id"]))
        assert name.scalar_one() == resident["name"]


def test_a_refusal_in_the_variables_names_where_it_is():
    variables = {"input": {"readings": [{"readingId": "r1"}, {"readingId": "r\x00", "k\ud800": 1}]}}
    messages = sorted(e.message for e in refused_variables(variables))
    assert messages == [
        f"变量 $input.readings[1] {REFUSED_MESSAGE}",
        f"变量 $input.readings[1].readingId {REFUSED_MESSAGE}",
    ]
    # Text that only spells the escape, and numbers past 64 bits, are not refused.
    assert refused_variables({"input": {"note": "\\u0000", "n": 2**70, "m": [None]}}) == []


def test_refused_characters_in_literals_are_bad_user_input(gql, admin, slug, rows):
    canonical = encode_id("Resident", slug, rows["resident"]["id"])

    @generated
    @given(st.text(max_size=8), st.text(max_size=8))
    def check(before, after):
        # A NUL written as the GraphQL escape, inside the document itself.
        literal = json.dumps(before + "\x00" + after, ensure_ascii=True)
        document = (
            f'mutation {{ updateResident(input: {{id: "{canonical}", name: {literal}}})'
            " { resident { id } } }"
        )
        status, body = gql(document, admin)
        assert status < 500 and codes(body) == ["BAD_USER_INPUT"], body

    check()


def test_an_answer_quoting_a_lone_surrogate_is_still_json(client, admin):
    @generated
    @given(st.text(max_size=5), REFUSED.filter(lambda c: c != "\x00"))
    def check(prefix, surrogate):
        # graphql-core quotes an unknown operation's name as it was sent.
        body = {"query": "{ __typename }", "operationName": prefix + surrogate}
        response = client.post("/graphql", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert response.status_code < 500
        assert codes(response.get_json())

    check()


# -- 3. numbers out of range -----------------------------------------------------------


def test_ages_beyond_any_lifetime_are_bad_user_input(gql, admin, slug):
    @generated
    @given(
        st.sampled_from(["ageMin", "ageMax"]),
        st.one_of(st.integers(-(2**31), -1), st.integers(151, 2**31 - 1)),
    )
    def check(bound, age):
        status, body = gql(RESIDENTS, admin, {"slug": slug, "filter": {bound: age}})
        assert status < 500 and codes(body) == ["BAD_USER_INPUT"], body

    check()


# -- 4. the HTTP body ------------------------------------------------------------------


def post_raw(client, token: str, body: bytes, content_type: str = "application/json"):
    return client.post(
        "/graphql",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_bad_request(response) -> None:
    assert response.status_code == 400, response.data[:300]
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert body["errors"][0]["message"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_bodies_the_parser_refuses_are_400(client, admin):
    query = '"query": "{ __typename }"'
    bodies = st.one_of(
        # Nested deeper than any variables need, up to what the body limit allows.
        st.integers(65, 300_000).map(lambda d: f'{{{query}, "variables": {{"a": {nested(d)}}}}}'),
        # Numbers a double cannot hold, and JSON's non-numbers.
        st.integers(309, 10_000).map(lambda e: f'{{{query}, "variables": {{"a": 1e{e}}}}}'),
        st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(
            lambda c: f'{{{query}, "variables": {{"a": {c}}}}}'
        ),
    ).map(str.encode)
    invalid_utf8 = st.binary(min_size=1, max_size=20).filter(_not_utf8)

    @generated
    @given(st.one_of(bodies, invalid_utf8.map(lambda b: b'{"query": "{ __typename }' + b + b'"}')))
    def check(body):
        assert_bad_request(post_raw(client, admin, body))

    check()


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


def _mixed(levels: int, leaf: object) -> object:
    """`levels` containers, objects and lists in turn, each beside an empty one and a
    scalar, around `leaf`."""
    value = leaf
    for level in range(levels):
        value = {"a": 1, "b": [], "c": value} if level % 2 else [{}, "x", value]
    return value


@pytest.mark.parametrize("leaf", [1, [], {}])
def test_the_nesting_limit_counts_every_object_and_list_down_to_the_deepest(leaf):
    # An empty container in a scalar's place is as deep as the scalar.
    deepest = _mixed(MAX_JSON_DEPTH, leaf)
    assert read_json(json.dumps(deepest), "variables") == deepest
    with pytest.raises(HttpFailure, match="nested deeper than 64"):
        read_json(json.dumps(_mixed(MAX_JSON_DEPTH + 1, leaf)), "variables")


def test_variables_over_get_are_read_by_the_same_parser(client, admin):
    @generated
    @given(st.integers(65, 5000))
    def check(depth):
        response = client.get(
            "/graphql",
            query_string={"query": "{ __typename }", "variables": f'{{"a": {nested(depth)}}}'},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert_bad_request(response)

    check()


def test_any_body_is_answered_in_json_without_a_5xx(client, admin):
    @generated
    @given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
    def check(body):
        response = post_raw(client, admin, body)
        assert response.status_code < 500
        assert response.mimetype == "application/json"
        assert response.get_json()["errors"][0]["extensions"]["code"]

    check()


def test_no_path_answers_with_an_html_page(client):
    paths = st.text(
        st.characters(codec="utf-8", exclude_characters="?#%"), min_size=1, max_size=30
    ).map(lambda p: "/" + p)

    @generated
    @given(paths, st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    def check(path, method):
        response = client.open(path, method=method)
        assert response.mimetype == "application/json", (path, method, response.data[:200])
        if response.status_code >= 400:
            assert response.get_json()["errors"][0]["extensions"]["code"]

    check()
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.get_json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_exception_is_a_json_500(settings, db):
    from villagelink.platform.app import create_app

    app = create_app(settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a fault in a route")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert b"fault" not in response.data


# -- 11. CORS ----------------------------------------------------------------------------

CONSOLE = "https://console.example.org"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def cors_headers(response) -> set[str]:
    return {
        name for name, _ in response.headers.items() if name.lower().startswith("access-control-")
    }


origins = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,6}){1,2}", fullmatch=True),
    st.sampled_from(["", ":8080", ":443"]),
).filter(lambda origin: origin != CONSOLE)


def test_same_origin_only_by_default(client, admin):
    @generated
    @given(origins)
    def check(origin):
        response = client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {admin}", "Origin": origin},
        )
        assert response.status_code == 200 and not cors_headers(response)
        preflight = client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert not cors_headers(preflight)
        assert preflight.status_code < 500

    check()


def test_allowed_origins_come_from_settings(settings, db, token):
    from villagelink.platform.app import create_app

    client = create_app(replace(settings, cors_allowed_origins=frozenset({CONSOLE}))).test_client()
    admin = token("platform-admin")

    preflight = client.options("/graphql", headers={"Origin": CONSOLE, **PREFLIGHT})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert {"GET", "POST"} <= {
        m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")
    }
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert int(preflight.headers["Access-Control-Max-Age"]) > 0

    response = client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {admin}", "Origin": CONSOLE},
    )
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "Origin" in response.headers["Vary"]
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]

    @generated
    @given(origins)
    def others_get_nothing(origin):
        preflight = client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert not cors_headers(preflight)
        response = client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {admin}", "Origin": origin},
        )
        assert not cors_headers(response)

    others_get_nothing()


def test_the_setting_is_read_from_the_environment():
    from villagelink.platform.settings import load_settings

    loaded = load_settings({"CORS_ALLOWED_ORIGINS": f" {CONSOLE}/ , http://localhost:5173,"})
    assert loaded.cors_allowed_origins == frozenset({CONSOLE, "http://localhost:5173"})
    assert load_settings({}).cors_allowed_origins == frozenset()


def test_decoding_keeps_the_key_as_spelled():
    # The parser of keys is separate from the decoding of IDs: a Village's key is its slug.
    assert decode_id(encode_id("Village", "liulin", "liulin")).key == "liulin"


# JSON texts of every kind the two readers may tell apart: integers past 64 bits, lone
# surrogates, floats of every spelling, duplicate keys, escapes.
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()))
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(_json_values, st.sampled_from([False, True]))
def test_the_fast_reader_reads_what_the_standard_library_reads(value, ascii_only):
    # orjson reads most bodies (graphql/gateway.py): whatever it reads, the standard
    # library's reading is the same value, floats to the bit and integers exact.
    text = json.dumps(value, ensure_ascii=ascii_only)
    expected = json.loads(text)
    for raw in (text, text.encode("utf-8", "surrogatepass")):
        try:
            read = read_json(raw, "variables")
        except HttpFailure:
            with pytest.raises((ValueError, RecursionError)):
                json.loads(raw)
            continue
        assert repr(read) == repr(expected)
