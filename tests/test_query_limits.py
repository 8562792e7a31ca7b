"""Bounded validation and execution: cost and depth linear in the document, list fields costed
by their size from the SDL, introspection counted, a per-request deadline, and a gateway worker
whose request is stuck replaced by gunicorn."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import replace

import psutil
import pytest
import requests
from sqlalchemy import text

from graphql import (
    GraphQLObjectType,
    get_introspection_query,
    get_named_type,
    is_interface_type,
    is_object_type,
    parse,
)
from villagelink.graphql.core.limits import (
    assumed_size,
    is_connection_edges,
    is_list_field,
    measure,
)
from villagelink.graphql.core.schema import executable_schema
from villagelink.platform.app import create_app
from villagelink.platform.identity.dev_issuer import mint_for_role

from .processes import gateway


def _fields_of_every_type():
    schema = executable_schema()
    for named in schema.type_map.values():
        if named.name.startswith("__"):
            continue
        if is_object_type(named) or is_interface_type(named):
            for name, definition in named.fields.items():
                yield named, name, definition


def test_every_list_field_has_a_size_from_the_sdl():
    """A list field either takes `first` (its page), is a connection's `edges` (its
    connection's page), or declares `@listSize(assumedSize:)`. A new list field without one
    fails here."""
    unsized = [
        f"{parent.name}.{name}"
        for parent, name, definition in _fields_of_every_type()
        if is_list_field(definition)
        and "first" not in definition.args
        and not is_connection_edges(parent.name, name)
        and not (assumed_size(definition) or 0) >= 1
    ]
    assert unsized == []


def _path_to(target: GraphQLObjectType) -> list[str]:
    """Field names from Query down to a field returning `target` (breadth first)."""
    schema = executable_schema()
    seen, queue = {"Query"}, deque([(schema.query_type, [])])
    while queue:
        parent, path = queue.popleft()
        if parent is target:
            return path
        for name, definition in parent.fields.items():
            child = get_named_type(definition.type)
            if (is_object_type(child) or is_interface_type(child)) and child.name not in seen:
                seen.add(child.name)
                queue.append((child, [*path, name]))
    raise AssertionError(f"{target.name} cannot be reached from Query")


def _cost(document: str, variables: dict | None = None) -> int:
    [(_, measured)] = measure(
        executable_schema(), parse(document), variables, max_page_size=100, saturate=10**12
    )
    return measured.cost


def test_every_paged_field_costs_by_the_page_it_asks_for():
    """Reached from Query (arguments other than `first` do not matter to the cost), every
    field taking `first` costs 99 more items for `first: 100` than for `first: 1`,
    whether `first` is written inline or passed as a variable."""
    paged = [(p, n) for p, n, d in _fields_of_every_type() if "first" in d.args]
    assert len(paged) >= 28
    for parent, name in paged:
        path = _path_to(parent)
        opening = " { ".join(path) + (" { " if path else "")
        closing = " }" * len(path)

        def document(first: str, path=path, opening=opening, closing=closing, name=name):
            declared = "($n: Int)" if first == "$n" else ""
            return (
                f"query{declared} {{ {opening}{name}(first: {first}) {{ __typename }}{closing} }}"
            )

        one, hundred = _cost(document("1")), _cost(document("100"))
        # 99 more items of two values each, times however many the path above repeats them.
        grown = hundred - one
        assert grown > 0 and grown % (99 * 2) == 0, f"{parent.name}.{name}: {one} -> {hundred}"
        assert _cost(document("$n"), {"n": 100}) == hundred, f"{parent.name}.{name}"


def _bomb(levels: int) -> str:
    fragments = ["fragment F0 on Village { name slug }"]
    fragments += [
        f"fragment F{i} on Village {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)
    ]
    return f"{{ villages {{ ...F{levels - 1} }} }} " + " ".join(fragments)


@pytest.fixture(scope="module")
def admin_headers(settings):
    # The messages these tests read are the English ones (tests/test_messages.py: Chinese).
    return {
        "Authorization": f"Bearer {mint_for_role(settings, 'platform-admin')}",
        "Accept-Language": "en",
    }


def test_a_fragment_bomb_of_30_levels_is_refused_in_well_under_a_second(client, admin_headers):
    document = _bomb(30)
    # Warm: the schema is built on the first request, which is not what is timed here.
    client.post("/graphql", json={"query": "{ __typename }"}, headers=admin_headers)
    started = time.perf_counter()
    response = client.post("/graphql", json={"query": document}, headers=admin_headers)
    elapsed = time.perf_counter() - started
    errors = response.get_json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "cost" in errors[0]["message"]
    assert elapsed < 0.3

    # Linear: 30 levels cost about what their longer text costs, against 3 levels, not the
    # 2**27 times more an expanding walk would take. The best of several runs of each, so
    # that a busy machine slows both alike.
    def best(levels: int) -> float:
        document = _bomb(levels)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            _cost(document)
            times.append(time.perf_counter() - started)
        return min(times)

    assert best(30) < 30 * best(3)


def test_introspection_counts_toward_cost(client, admin_headers):
    full = client.post("/graphql", json={"query": get_introspection_query()}, headers=admin_headers)
    assert full.status_code == 200
    assert full.get_json()["data"]["__schema"]["queryType"]["name"] == "Query"
    many = "{ " + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(20)) + " }"
    refused = client.post("/graphql", json={"query": many}, headers=admin_headers)
    error = refused.get_json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "cost" in error["message"]


def test_a_request_past_its_deadline_stops_with_deadline_exceeded(settings, db, demo_region):
    slug = demo_region.slugs[0]
    query = (
        f'{{ village(slug: "{slug}") {{ residents(first: 100) {{ edges {{ node {{ name '
        "household { members { name } } } } } } }"
    )
    headers = {"Authorization": f"Bearer {mint_for_role(settings, 'village-admin', village=slug)}"}
    # The same document answers in full with the default deadline ...
    relaxed = create_app(settings).test_client()
    answered = relaxed.post("/graphql", json={"query": query}, headers=headers).get_json()
    assert "errors" not in answered
    # ... and is cut short once the deadline has passed as execution starts.
    strict = create_app(replace(settings, request_deadline_ms=0)).test_client()
    response = strict.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["data"] == {"village": None}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"DEADLINE_EXCEEDED"}


@pytest.mark.worker_process
@pytest.mark.timeout(90)
def test_a_worker_with_a_stuck_request_is_replaced(settings, db, tmp_path):
    """A request waits on a table lock with no statement timeout: only gunicorn can free its
    worker. With the hooks the worker stops its heartbeat, is killed and replaced, and the next
    request is served."""
    log = tmp_path / "gunicorn.log"
    with gateway(
        settings,
        log,
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="2",
        GUNICORN_TIMEOUT="5",
        DB_STATEMENT_TIMEOUT_MS="0",
    ) as served:
        headers = {"Authorization": f"Bearer {mint_for_role(served.settings, 'platform-admin')}"}
        [first_worker] = served.workers()
        lock = db.engine.connect()
        try:
            lock.execute(text("LOCK TABLE platform.tenants IN ACCESS EXCLUSIVE MODE"))
            stuck = threading.Thread(
                target=_post_ignoring_errors, args=(served.url, headers), daemon=True
            )
            stuck.start()
            _wait(lambda: served.workers() not in (set(), {first_worker}), within=40)
            lock.rollback()
            answer = requests.post(
                f"{served.url}/graphql",
                json={"query": "{ villages { slug } }"},
                headers=headers,
                timeout=20,
            )
            assert answer.status_code == 200
            assert "WORKER TIMEOUT" in log.read_text()
        finally:
            lock.rollback()
            lock.close()


def _post_ignoring_errors(url: str, headers: dict) -> None:
    # The worker serving it is killed: the connection drops.
    with contextlib.suppress(requests.RequestException):
        requests.post(
            f"{url}/graphql", json={"query": "{ villages { slug } }"}, headers=headers, timeout=60
        )


def _wait(condition, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (requests.RequestException, psutil.Error):
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
