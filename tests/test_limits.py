"""Per-caller rate limits (in Redis) and the database statement timeout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from villagelink.platform.app import create_app
from villagelink.platform.db import Database


def test_rate_limit_per_caller(settings, db, token, redis_client):
    app = create_app(replace(settings, rate_limit_per_minute=3))
    client = app.test_client()
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='rate-limited-caller')}"}
    other = {"Authorization": f"Bearer {token('platform-admin', sub='someone-else')}"}
    statuses = [
        client.post("/graphql", json={"query": "{ __typename }"}, headers=caller).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/graphql", json={"query": "{ __typename }"}, headers=caller)
    assert limited.get_json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) in range(0, 61)
    assert (
        client.post("/graphql", json={"query": "{ __typename }"}, headers=other).status_code == 200
    )


def test_rate_limiter_lets_requests_through_when_redis_is_down(settings, db, token):
    app = create_app(
        replace(settings, external_redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute=1)
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token('platform-admin')}"}
    for _ in range(3):
        assert (
            client.post("/graphql", json={"query": "{ __typename }"}, headers=headers).status_code
            == 200
        )
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["redis"].startswith("unavailable")


def test_statement_timeout_bounds_every_village_query(settings, village):
    short = Database(settings.database_url, statement_timeout_ms=200)
    try:
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            short.tenant(village.slug) as conn,
        ):
            conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        short.dispose()
