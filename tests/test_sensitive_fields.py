"""Every field carrying an ID number or a phone is marked `@sensitive` and goes through the one
guard (graphql/core/sensitive.py); no unmarked field carries such data.

The second half is shown over data: a query is generated for every field reachable from a
seeded village, as its admin, and every value of an unmarked field is searched for something
shaped like an ID number or a phone.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from graphql import (
    GraphQLNonNull,
    get_named_type,
    is_abstract_type,
    is_enum_type,
    is_leaf_type,
    is_object_type,
)
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.core.sensitive import sensitive_marking
from villagelink.platform import models as pm
from villagelink.platform.identity.dev_issuer import mint_for_role

ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")
# Names that say "this is a phone or an ID number", in the API's camelCase.
SENSITIVE_NAME = re.compile(r"phone|idNumber|mobile|telephone|idCard", re.IGNORECASE)


def _object_fields():
    for named in executable_schema().type_map.values():
        if is_object_type(named) and not named.name.startswith("__"):
            for name, definition in named.fields.items():
                yield named, name, definition


def test_every_marked_field_is_guarded_and_takes_unmasked_and_reason():
    marked = [(t, n, d, sensitive_marking(d)) for t, n, d in _object_fields()]
    marked = [(t, n, d, m) for t, n, d, m in marked if m]
    assert len(marked) >= 9
    for parent, name, definition, marking in marked:
        where = f"{parent.name}.{name}"
        assert getattr(definition.resolve, "guards_sensitive", None) == marking.kind, where
        if marking.for_contact:
            assert not definition.args, where
            continue
        assert set(definition.args) >= {"unmasked", "reason"}, where
        default = definition.args["unmasked"].ast_node.default_value
        assert default is not None and default.value is False, where


def test_every_field_named_like_a_phone_or_id_number_is_marked():
    unmarked = [
        f"{parent.name}.{name}"
        for parent, name, definition in _object_fields()
        if SENSITIVE_NAME.search(name)
        and is_leaf_type(get_named_type(definition.type))
        and not sensitive_marking(definition)
    ]
    assert unmarked == []


def _selection(named, depth: int, seen: frozenset[str]) -> str:
    """Every field of `named` answerable without arguments (lists at 3 items), to `depth`."""
    if is_abstract_type(named):
        inner = [
            f"... on {possible.name} {{ {_selection(possible, depth, seen)} }}"
            for possible in executable_schema().get_possible_types(named)
            if possible.name not in seen
        ]
        return " ".join(["__typename", *inner])
    parts = ["__typename"]
    for name, definition in named.fields.items():
        required = [
            a
            for a, arg in definition.args.items()
            if isinstance(arg.type, GraphQLNonNull)
            and (arg.ast_node is None or arg.ast_node.default_value is None)
            and a != "first"
        ]
        if required or sensitive_marking(definition):
            continue
        arguments = "(first: 3)" if "first" in definition.args else ""
        target = get_named_type(definition.type)
        # Aliased by type: fragments on the members of an interface may share a field name
        # with different types, which one selection cannot merge.
        field = f"{named.name}_{name}: {name}{arguments}"
        if is_leaf_type(target) or is_enum_type(target):
            parts.append(field)
        elif depth > 0 and target.name not in seen:
            inner = _selection(target, depth - 1, seen | {target.name})
            parts.append(f"{field} {{ {inner} }}")
    return " ".join(parts)


def _values(answer, path=()):
    if isinstance(answer, dict):
        for key, value in answer.items():
            yield from _values(value, (*path, key))
    elif isinstance(answer, list):
        for value in answer:
            yield from _values(value, path)
    elif isinstance(answer, str):
        yield ".".join(path), answer


@pytest.fixture(scope="module")
def admin_of(settings):
    return lambda slug: mint_for_role(settings, "village-admin", village=slug)


def test_no_unmarked_field_carries_an_id_number_or_a_phone(client, demo_region, admin_of):
    """Each field of Village (and what hangs below it, five levels down) over the seeded
    demo village, one query per field to stay within the cost limit."""
    slug = demo_region.slugs[0]
    headers = {"Authorization": f"Bearer {admin_of(slug)}"}
    village = executable_schema().type_map["Village"]
    found, asked = [], 0
    for name, definition in village.fields.items():
        required = [a for a, arg in definition.args.items() if isinstance(arg.type, GraphQLNonNull)]
        target = get_named_type(definition.type)
        if required or is_leaf_type(target):
            continue
        arguments = "(first: 3)" if "first" in definition.args else ""
        inner = _selection(target, 4, frozenset({"Village", target.name}))
        query = f'{{ village(slug: "{slug}") {{ {name}{arguments} {{ {inner} }} }} }}'
        body = client.post("/graphql", json={"query": query}, headers=headers).get_json()
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", ())}
        assert "INTERNAL" not in codes and "GRAPHQL_VALIDATION_FAILED" not in codes, (name, body)
        asked += 1
        for path, value in _values(body.get("data")):
            if ID_NUMBER.search(value) or MOBILE.search(value) or LANDLINE.search(value):
                found.append((path, value))
    assert asked > 20
    assert found == []


def test_marked_fields_answer_masked_by_default(client, demo_region, admin_of):
    slug = demo_region.slugs[0]
    query = f"""{{ village(slug: "{slug}") {{
      residents(first: 20) {{ edges {{ node {{ idNumber phone }} }} }}
      grids(first: 20) {{ edges {{ node {{ staff {{ phone }} }} }} }} }} }}"""
    body = client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {admin_of(slug)}"}
    ).get_json()
    values = [v for _, v in _values(body["data"])]
    assert len(values) > 20
    assert all("*" in value for value in values if value)


RESIDENT_ID_NUMBER = """query($slug: String!, $reason: String) { village(slug: $slug) {
  residents(first: 1) { edges { node { idNumber(unmasked: true, reason: $reason) } } } } }"""


@pytest.mark.parametrize("reason", [None, "", "   ", "ab", " 核对 ", "\t\n回访\u3000"])
def test_unmasking_needs_a_reason_of_a_few_characters(client, demo_region, admin_of, reason):
    slug = demo_region.slugs[0]
    body = client.post(
        "/graphql",
        json={"query": RESIDENT_ID_NUMBER, "variables": {"slug": slug, "reason": reason}},
        headers={"Authorization": f"Bearer {admin_of(slug)}"},
    ).get_json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "理由" in error["message"]


def test_an_unmasked_read_is_audited_with_its_reason(client, demo_region, admin_of, db):
    slug = demo_region.slugs[1]
    reason = "  低保复核走访  "
    body = client.post(
        "/graphql",
        json={"query": RESIDENT_ID_NUMBER, "variables": {"slug": slug, "reason": reason}},
        headers={"Authorization": f"Bearer {admin_of(slug)}"},
    ).get_json()
    [edge] = body["data"]["village"]["residents"]["edges"]
    assert ID_NUMBER.fullmatch(edge["node"]["idNumber"])
    with db.platform() as conn:
        reasons = conn.execute(
            select(pm.audit_log.c.reason).where(
                pm.audit_log.c.village == slug, pm.audit_log.c.action == "resident.read_unmasked"
            )
        ).scalars()
        assert reason.strip() in list(reasons)


def test_a_grid_worker_may_not_unmask(client, demo_region, settings):
    slug = demo_region.slugs[0]
    worker = mint_for_role(settings, "grid-worker", village=slug)
    body = client.post(
        "/graphql",
        json={"query": RESIDENT_ID_NUMBER, "variables": {"slug": slug, "reason": "核对身份信息"}},
        headers={"Authorization": f"Bearer {worker}"},
    ).get_json()
    assert {e["extensions"]["code"] for e in body.get("errors", ())} <= {"FORBIDDEN"}
    values = [v for _, v in _values(body.get("data"))]
    assert not any(ID_NUMBER.search(v) for v in values)
