"""Every number a caller can write, at the edges of what GraphQL's Int and Float hold:
never an internal error nor a database error, whatever the argument, filter or input.

The fuzz suite sends edge numbers too, but reaches each argument rarely. This walks the
executable schema instead: every Int and Float argument of the Query and Mutation roots,
of Village's fields and of every Node type's (reached as `node(id:)`), and every Int and
Float field inside their input objects (nested too), each sent in a document otherwise
minimal and plausible (real IDs of a populated village, the enums' first values), so
that a number added later is covered here without a change.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import insert, select

import graphql
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.gateway import REFUSED_BY_DATABASE
from villagelink.platform import models as pm
from villagelink.platform.access import API_SCOPES
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.tenants import models as m

EDGES = {
    "Int": [-2147483648, -1, 0, 2147483647],
    "Float": [-1e308, -181.0, 1e16, 1e308],
}
# What a database error reads like, should one leak into a message; the gateway's own
# answer when PostgreSQL refused a value counts too: the value should not have got there.
LEAKS = re.compile(
    r"psycopg|sqlalchemy|SQL|out of range for type|numeric field overflow|"
    r"violates|DataError|Traceback",
    re.IGNORECASE,
)
# The verbs a mutation's name starts with; what follows names the type it acts on.
VERBS = re.compile(r"^(create|update|delete|register|schedule|rate|tag|ingest|report)")


@dataclass(frozen=True)
class Case:
    root: str  # "query", "mutation", "village" or a Node type's name
    field: str
    path: tuple[str, ...]  # argument, then input fields down to the number
    scalar: str


def _numbers(type_, path: tuple[str, ...], seen: tuple[str, ...]) -> Iterator[tuple]:
    named = graphql.get_named_type(type_)
    if isinstance(named, graphql.GraphQLInputObjectType) and named.name not in seen:
        for name, field in named.fields.items():
            yield from _numbers(field.type, (*path, name), (*seen, named.name))
    elif named.name in EDGES:
        yield path, named.name


def parents(schema: graphql.GraphQLSchema) -> dict[str, graphql.GraphQLObjectType]:
    """Where the numbers are: the roots, Village (reached as `village(slug:)`) and every
    Node type (reached as `node(id:)`), by the name a Case calls its root."""
    node_types = schema.get_possible_types(schema.get_type("Node"))
    return {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "village": schema.get_type("Village"),
        **{t.name: t for t in node_types if t.name != "Village"},
    }


def cases(schema: graphql.GraphQLSchema) -> list[Case]:
    return [
        Case(root, name, path, scalar)
        for root, object_type in parents(schema).items()
        for name, field in object_type.fields.items()
        for argument, arg in field.args.items()
        for path, scalar in _numbers(arg.type, (argument,), ())
    ]


@pytest.fixture(scope="module")
def ranges_app(settings, db):
    """An app of its own: several hundred requests are more than the rate limit allows."""
    from villagelink.platform.app import create_app

    return create_app(replace(settings, rate_limit_cost_per_minute=10**12))


@pytest.fixture(scope="module")
def ranges_village(db) -> str:
    from .conftest import new_populated_village

    return new_populated_village(db).slug


def _first_keys(db, slug: str) -> dict[str, int]:
    """The first key of every village table that has rows, by table name."""
    keys = {}
    with db.tenant(slug) as conn:
        for table in m.metadata.sorted_tables:
            if "id" in table.c and table.schema is None:
                key = conn.execute(select(table.c.id).order_by(table.c.id).limit(1)).scalar()
                if isinstance(key, int):
                    keys[table.name] = key
    return keys


def _device_platform(db, slug: str) -> str:
    client = f"nr-{uuid.uuid4().hex[:10]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client, name="数值边界测试", villages=[slug], scopes=list(API_SCOPES)
            )
        )
    return client


class Filler:
    """Plausible values for everything a case does not test."""

    def __init__(self, schema, slug: str, keys: dict[str, int]):
        self.schema = schema
        self.slug = slug
        self.keys = keys
        self.node_types = {t.name for t in schema.get_possible_types(schema.get_type("Node"))}

    def _key(self, type_name: str) -> int:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()
        for table in (f"{snake}s", f"{snake}es", snake, snake[:-1] + "ies"):
            if table in self.keys:
                return self.keys[table]
        return 1

    def id_for(self, field: str, target: str) -> str:
        base = re.sub(r"Ids?$", "", field)
        type_name = base[:1].upper() + base[1:] if base else target
        if type_name not in self.node_types:
            type_name = next((t for t in self.node_types if t.endswith(type_name)), target)
        return encode_id(type_name, self.slug, self._key(type_name))

    def value(self, type_, name: str, target: str):
        """A JSON value for variables."""
        if isinstance(type_, graphql.GraphQLNonNull):
            return self.value(type_.of_type, name, target)
        if isinstance(type_, graphql.GraphQLList):
            return [self.value(type_.of_type, name, target)]
        if isinstance(type_, graphql.GraphQLEnumType):
            return next(iter(type_.values))
        if isinstance(type_, graphql.GraphQLInputObjectType):
            return {
                n: self.value(f.type, n, target)
                for n, f in type_.fields.items()
                if graphql.is_required_input_field(f)
            }
        return self.scalar(type_.name, name, target)

    def scalar(self, scalar: str, name: str, target: str):
        lowered = name.lower()
        if scalar == "ID":
            return self.id_for(name, target)
        if scalar == "Int":
            return 1
        if scalar == "Float":
            return 1.0
        if scalar == "Boolean":
            return False
        # The end of a range a day after its start, so that the range itself is valid.
        day = 21 if re.search(r"(^to|Until|End|To)$", name) else 20
        if scalar == "Date":
            return f"2026-12-{day}"
        if scalar == "DateTime":
            return f"2026-12-{day}T09:00:00+08:00"
        if scalar == "JSON":
            return {}
        if lowered in ("slug", "village"):
            return self.slug
        if "phone" in lowered or "mobile" in lowered:
            return "13800138000"
        if "idnumber" in lowered:
            return "110101199003074477"
        return "测试"


def _error_lists(type_) -> list[str]:
    """A payload's lists of errors: `userErrors`, and per-item ones such as `itemErrors`."""
    named = graphql.get_named_type(type_)
    return [
        name
        for name, field in getattr(named, "fields", {}).items()
        if name.endswith("Errors") and "message" in graphql.get_named_type(field.type).fields
    ]


def _selection(type_) -> str:
    named = graphql.get_named_type(type_)
    if not isinstance(named, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
        return ""
    inner = ["__typename", *(f"{name} {{ message }}" for name in _error_lists(named))]
    if "edges" in named.fields:
        inner.append("edges { __typename }")
    return " { " + " ".join(inner) + " }"


def _set(filler: Filler, type_, value, path: tuple[str, ...], number, target: str):
    """`value` (of input type `type_`) with `number` at `path`: an object on the way that
    is missing is made with its required fields; in a list, inside its one item."""
    named = graphql.get_named_type(type_)
    if isinstance(value, list):
        return [_set(filler, named, value[0] if value else None, path, number, target)]
    if value is None:
        value = filler.value(named, path[0], target)
    if len(path) == 1:
        return {**value, path[0]: number}
    inner = named.fields[path[0]].type
    return {**value, path[0]: _set(filler, inner, value.get(path[0]), path[1:], number, target)}


def request(schema, filler: Filler, case: Case, number) -> tuple[str, dict]:
    """A document and its variables: every argument a variable, the case's number inside."""
    field = parents(schema)[case.root].fields[case.field]
    target = VERBS.sub("", case.field)
    target = target[:1].upper() + target[1:]
    variables = {
        name: filler.value(arg.type, name, target)
        for name, arg in field.args.items()
        if graphql.is_required_argument(arg) or name == case.path[0]
    }
    first = case.path[0]
    if len(case.path) == 1:
        variables[first] = number
    else:
        variables[first] = _set(
            filler, field.args[first].type, variables[first], case.path[1:], number, target
        )
    declared = ", ".join(f"${n}: {field.args[n].type}" for n in variables)
    passed = ", ".join(f"{n}: ${n}" for n in variables)
    call = f"{case.field}({passed}){_selection(field.type)}"
    if case.root == "village":
        declared = ", ".join(filter(None, ["$slug: String!", declared]))
        variables["slug"] = filler.slug
        return f"query({declared}) {{ village(slug: $slug) {{ {call} }} }}", variables
    if case.root not in ("query", "mutation"):
        declared = ", ".join(filter(None, ["$nodeId: ID!", declared]))
        variables["nodeId"] = filler.id_for("", case.root)
        document = (
            f"query({declared}) {{ node(id: $nodeId) {{ ... on {case.root} {{ {call} }} }} }}"
        )
        return document, variables
    operation = "mutation" if case.root == "mutation" else "query"
    return f"{operation}({declared}) {{ {call} }}", variables


def test_every_number_at_its_edges_is_refused_or_answered(ranges_app, settings, db, ranges_village):
    schema = executable_schema()
    filler = Filler(schema, ranges_village, _first_keys(db, ranges_village))
    tokens = {
        role: mint_for_role(settings, role, **scope)
        for role, scope in {
            "village-admin": {"village": ranges_village},
            "platform-admin": {},
            # A device platform: the only caller of the device ingest mutations.
            "integrator": {"client": _device_platform(db, ranges_village)},
        }.items()
    }
    client = ranges_app.test_client()
    found = cases(schema)
    parent_fields = {root: object_type.fields for root, object_type in parents(schema).items()}
    # The walk reaches nested inputs and Village's filters.
    assert any(c.path == ("input", "readings", "heartRate") for c in found)
    assert any(c.root == "village" and c.path == ("filter", "ageMin") for c in found)
    assert any(c.root == "Resident" and c.field == "healthReadings" for c in found)
    failures: list[str] = []
    sent = 0
    for case in found:
        for number in EDGES[case.scalar]:
            document, variables = request(schema, filler, case, number)
            # The village admin first; the others only where the admin may not call it (a
            # platform mutation, a device platform's ingest), so that each number is
            # checked by a caller allowed to reach it.
            for role, token in tokens.items():
                sent += 1
                response = client.post(
                    "/graphql",
                    json={"query": document, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                )
                body = response.get_json(silent=True) or {}
                errors = list(body.get("errors") or ())
                data = body.get("data") or {}
                if case.root not in ("query", "mutation"):
                    data = data.get("node" if case.root != "village" else "village") or {}
                payload = data.get(case.field) or {}
                messages = [e.get("message", "") for e in errors] + [
                    e.get("message", "")
                    for name in _error_lists(parent_fields[case.root][case.field].type)
                    for e in (payload.get(name) or ())
                ]
                codes = [(e.get("extensions") or {}).get("code") for e in errors]
                if (
                    response.status_code >= 500
                    or not body
                    or "INTERNAL" in codes
                    or any(LEAKS.search(text or "") for text in messages)
                    or REFUSED_BY_DATABASE in messages
                ):
                    failures.append(
                        f"{case.root}.{case.field} {'.'.join(case.path)}={number} as {role}: "
                        f"{response.status_code} {json.dumps(body, ensure_ascii=False)[:400]}"
                    )
                if "FORBIDDEN" not in codes:
                    break
    cases_run = len(found) * 4
    print(f"{len(found)} (field, argument) numbers, {cases_run} cases, {sent} requests")
    assert cases_run <= sent <= cases_run * len(tokens)
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:40])
