"""Generated operations over every query and mutation root, sent as each role: whatever a
caller writes in a document, the answer is never an HTTP 5xx nor an INTERNAL error.

hypothesis-graphql writes the documents from the schema itself, so a root added later is
fuzzed without a change here. Each generated document is sent once per role (generating
is the slow part; executing is cheap), through the Flask test client, with a fixed seed:
the normal run is the same 2,000+ operations every time. `make fuzz` runs many more
(VILLAGELINK_FUZZ_DOCUMENTS) with fresh randomness.
"""

from __future__ import annotations

import os
import string
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries
from hypothesis_graphql._strategies import sampler
from sqlalchemy import insert, select

import graphql
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.schema import executable_schema
from villagelink.platform import models as pm
from villagelink.platform.access import (
    ALERTS_READ_SCOPE,
    DEVICES_WRITE_SCOPE,
    NOTICES_READ_SCOPE,
    RESIDENTS_READ_SCOPE,
)
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.identity.principal import ROLES
from villagelink.tenants import models as m
from villagelink.tenants.demo.plans import demo_grid_worker_subject

from .conftest import TEST_REGION

# Documents generated per run; each is sent as all five roles (2,000 operations by default).
DOCUMENTS = int(os.environ.get("VILLAGELINK_FUZZ_DOCUMENTS", "420"))
# `make fuzz` sets this to explore beyond the fixed seed.
RANDOMIZED = os.environ.get("VILLAGELINK_FUZZ_RANDOM") == "1"


@pytest.fixture(scope="module")
def fuzz_app(settings, db):
    """An app of its own whose rate limit does not end the run after 600 requests."""
    from villagelink.platform.app import create_app

    return create_app(replace(settings, rate_limit_cost_per_minute=10**12))


@pytest.fixture(scope="module")
def fuzz_village(db) -> str:
    """A populated village (the demo plan at a small size): real rows for IDs to name."""
    from villagelink.tenants.demo.plans import DEMO_VILLAGES
    from villagelink.tenants.demo.residents import build_village, write_village

    from .conftest import new_village

    village = new_village(db, "模糊测试村")
    plan = replace(DEMO_VILLAGES[0], slug=village.slug, name="模糊测试村", residents=40)
    with db.tenant(village.slug) as conn:
        write_village(conn, build_village(plan, seed=11))
    return village.slug


@pytest.fixture(scope="module")
def callers(settings, db, fuzz_village) -> dict[str, str]:
    """A bearer token for every role, each reaching the fuzzed village its own way."""
    client = f"fz-{uuid.uuid4().hex[:10]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client,
                name="模糊测试",
                villages=[fuzz_village],
                scopes=[
                    RESIDENTS_READ_SCOPE,
                    NOTICES_READ_SCOPE,
                    DEVICES_WRITE_SCOPE,
                    ALERTS_READ_SCOPE,
                ],
            )
        )
    scope = {
        "platform-admin": {},
        "regional-coordinator": {"region": TEST_REGION},
        "village-admin": {"village": fuzz_village},
        "grid-worker": {"village": fuzz_village, "sub": demo_grid_worker_subject(fuzz_village)},
        "integrator": {"client": client},
        "resident": {"village": fuzz_village},
    }
    assert set(scope) == set(ROLES), "a new role needs its place in the fuzz suite"
    return {role: mint_for_role(settings, role, **scope[role]) for role in ROLES}


def _real_ids(db, slug: str) -> list[str]:
    tables = {"Resident": m.residents, "Household": m.households, "Grid": m.grids}
    with db.tenant(slug) as conn:
        return [
            encode_id(type_name, slug, key)
            for type_name, table in tables.items()
            for key in conn.execute(select(table.c.id).order_by(table.c.id).limit(5)).scalars()
        ]


def _json_literal(value) -> graphql.ValueNode:
    if isinstance(value, dict):
        return graphql.ObjectValueNode(
            fields=tuple(
                graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_json_literal(v))
                for k, v in value.items()
            )
        )
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_json_literal(v) for v in value))
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return nodes.Int(value)
    return nodes.String(value)


def scalar_strategies(schema, slug: str, real_ids: list[str]) -> dict:
    """Values a caller might send: mostly plausible (this village, its IDs, real dates),
    often hostile (other villages, forged IDs and keys, every character)."""
    node_types = [t.name for t in schema.get_possible_types(schema.get_type("Node"))]
    # IDs of this village's objects of any type: rows the run itself creates get small keys.
    village_ids = st.builds(
        encode_id, st.sampled_from(node_types), st.just(slug), st.integers(1, 30)
    )
    forged_ids = st.builds(
        encode_id,
        st.sampled_from(node_types),
        st.sampled_from([slug, "liulin", TEST_REGION, ""]),
        st.one_of(
            st.integers(-(2**70), 2**70).map(str),
            st.text(string.digits + "²٣+- \x00", max_size=22),
        ),
    )
    plausible_text = st.sampled_from(
        [TEST_REGION, "liulin", "", "张三", "13800138000", "110101199003074477"]
    )
    # NUL somewhere in otherwise ordinary text (a lone surrogate cannot be written in a
    # document at all: the lexer refuses it; test_hostile_input.py sends it in variables).
    refused_text = st.tuples(st.text(max_size=5), st.text(max_size=5)).map("\x00".join)
    # Column limits: smallint, integer, and what a double holds.
    edge_ints = st.sampled_from([-(2**31), -32769, -1, 0, 1, 32767, 32768, 1000000, 2**31 - 1])
    edge_floats = st.sampled_from([-1e308, -181.0, -91.0, 0.0, 91.0, 181.0, 1e16, 1e308])
    return {
        "ID": st.one_of(
            st.sampled_from(real_ids), village_ids, forged_ids, st.text(max_size=30)
        ).map(nodes.String),
        "String": st.one_of(st.just(slug), plausible_text, refused_text, st.text(max_size=40)).map(
            nodes.String
        ),
        "Int": st.one_of(edge_ints, st.integers(-(2**31), 2**31 - 1)).map(nodes.Int),
        "Float": st.one_of(edge_floats, st.floats(allow_nan=False, allow_infinity=False)).map(
            nodes.Float
        ),
        "Date": st.one_of(st.dates().map(str), st.text(max_size=12)).map(nodes.String),
        "DateTime": st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
            st.datetimes().map(datetime.isoformat),
            st.text(max_size=25),
        ).map(nodes.String),
        "JSON": st.recursive(
            st.one_of(st.integers(), st.text(max_size=10), st.booleans()),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3),
                st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), inner, max_size=3),
            ),
            max_leaves=6,
        ).map(_json_literal),
    }


@pytest.mark.slow
def test_generated_operations_never_fail_internally(
    fuzz_app, db, fuzz_village, callers, monkeypatch
):
    schema = executable_schema()
    # Documents deeper than the gateway's depth limit are refused before anything runs;
    # generating them would only spend the run on the validator. Small, shallow
    # documents reach more resolvers for the same time.
    monkeypatch.setattr(sampler, "MAX_DEPTH", 4)
    monkeypatch.setattr(sampler, "MAX_FIELDS", 10)
    scalars = scalar_strategies(schema, fuzz_village, _real_ids(db, fuzz_village))
    roots = [("query", name) for name in schema.query_type.fields] + [
        ("mutation", name) for name in schema.mutation_type.fields
    ]
    client = fuzz_app.test_client()
    executing: list[float] = []
    operations: list[str] = []
    failures: list[str] = []
    outcomes: Counter[str] = Counter()

    def send(document: str) -> None:
        started = time.perf_counter()
        for role, token in callers.items():
            operations.append(role)
            response = client.post(
                "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {token}"}
            )
            body = response.get_json(silent=True)
            codes = [
                (e.get("extensions") or {}).get("code") for e in (body or {}).get("errors", ())
            ]
            outcomes.update(codes or ["OK"])
            if response.status_code >= 500 or body is None or "INTERNAL" in codes:
                failures.append(f"{role} -> {response.status_code} {body}\n{document}")
        executing.append(time.perf_counter() - started)

    # Root by root: each is fuzzed as often as the others.
    per_root = -(-DOCUMENTS // len(roots))
    for kind, name in roots:
        strategy = (queries if kind == "query" else mutations)(
            schema, fields=[name], custom_scalars=scalars
        )
        settings(
            max_examples=per_root,
            derandomize=not RANDOMIZED,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(send))()
    print(f"{len(operations)} operations, {sum(executing):.1f} s executing: {dict(outcomes)}")
    assert len(operations) >= min(2000, DOCUMENTS * len(callers))
    assert not failures, f"{len(failures)} of {len(operations)} operations failed:\n\n" + (
        "\n\n".join(failures[:20])
    )
