"""Per-caller cost budgets (leased from Redis in slices, graphql/core/budget.py) and the
database statement timeout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from villagelink.graphql.core.budget import MIN_CHARGE, Allowances, Budget
from villagelink.platform.app import create_app
from villagelink.platform.db import Database


def post(client, headers, query: str = "{ __typename }"):
    return client.post("/graphql", json={"query": query}, headers=headers)


def test_cost_budget_per_caller_with_ratelimit_headers(settings, db, token, redis_client):
    """Cheap requests are charged the minimum (MIN_CHARGE): three fit a budget of 350."""
    app = create_app(replace(settings, rate_limit_cost_per_minute=350))
    client = app.test_client()
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='rate-limited-caller')}"}
    other = {"Authorization": f"Bearer {token('platform-admin', sub='someone-else')}"}
    answers = [post(client, caller) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["250", "150", "50", "50"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"350"}
    assert all(1 <= int(a.headers["RateLimit-Reset"]) <= 60 for a in answers)
    assert answers[0].get_json()["extensions"]["cost"] == {
        "requested": 1,
        "limit": settings.max_query_cost,
        "remaining": 250,
    }
    limited = answers[3]
    assert limited.get_json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert limited.headers["Retry-After"] == limited.headers["RateLimit-Reset"]
    assert post(client, other).status_code == 200


def test_a_query_is_charged_its_cost_and_a_refused_one_spends_only_the_minimum(
    settings, db, token, redis_client
):
    app = create_app(replace(settings, rate_limit_cost_per_minute=30000))
    client = app.test_client()
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='introspecting-caller')}"}
    introspection = "{ __schema { types { name } } }"
    first = post(client, caller, introspection)
    assert first.status_code == 200
    cost = first.get_json()["extensions"]["cost"]
    # A full introspection's cost is the schema's size (graphql/core/limits.py).
    assert 10000 < cost["requested"] < 30000
    assert cost["remaining"] == 30000 - cost["requested"]
    assert first.headers["RateLimit-Remaining"] == str(cost["remaining"])

    second = post(client, caller, introspection)
    assert second.status_code == 429
    body = second.get_json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert body["extensions"]["cost"]["requested"] == cost["requested"]
    # Refused before it ran: only the minimum was spent, and a cheap request still fits.
    assert body["extensions"]["cost"]["remaining"] == cost["remaining"] - MIN_CHARGE
    cheap = post(client, caller)
    assert cheap.status_code == 200
    assert cheap.headers["RateLimit-Remaining"] == str(cost["remaining"] - 2 * MIN_CHARGE)


def test_a_process_charges_cheap_requests_from_its_slice_without_asking_redis(
    settings, db, token, redis_client
):
    """Redis lends a process a slice of the caller's budget (1% of it, graphql/core/budget.py);
    the requests after the first are charged from it: the key in Redis moves once."""
    app = create_app(replace(settings, rate_limit_cost_per_minute=300000))
    client = app.test_client()
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='sliced-caller')}"}
    answers = [post(client, caller) for _ in range(5)]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == [
        str(300000 - n * MIN_CHARGE) for n in range(1, 6)
    ]
    (key,) = redis_client.keys("villagelink:budget:*:sliced-caller:*")
    assert int(redis_client.get(key)) == 3000


def test_processes_sharing_a_budget_never_spend_more_than_it(settings, db, token, redis_client):
    """Two processes (two apps, each with its own slices) take turns: together they run as
    many requests as the budget holds, and no more."""
    limited = replace(settings, rate_limit_cost_per_minute=550)
    clients = [create_app(limited).test_client() for _ in range(2)]
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='shared-caller')}"}
    statuses = [post(clients[n % 2], caller).status_code for n in range(8)]
    assert statuses.count(200) == 5 and statuses[5:] == [429, 429, 429]


def test_a_request_is_not_refused_when_another_spends_its_slice_while_it_leases(redis_client):
    """A console loads a screen's documents side by side: one request leases a slice, and
    before the slice reaches it another request of the caller's spends from what the
    process held. The first leases again rather than being refused with most of the
    budget left."""

    class SpentMeanwhile(Allowances):
        def add(self, key, window, lease, leased, amount):
            if amount == 5000 and not getattr(self, "raced", False):
                self.raced = True
                assert self.spend(key, window, 2500)[0]  # the request beside it
            return super().add(key, window, lease, leased, amount)

    allowances = SpentMeanwhile()
    limit = 300000

    def budget() -> Budget:
        return Budget(redis_client, allowances, "console:side-by-side", limit)

    assert budget().charge(MIN_CHARGE).charged  # a slice of 3,000 leased, 2,900 left
    state = budget().charge(5000)  # 2,900 + 3,000 leased, but 2,500 spent meanwhile
    assert state is not None and state.charged, state
    assert state.remaining == limit - MIN_CHARGE - 2500 - 5000
    assert budget().charge(limit).charged is False  # the budget itself still refuses


def test_processes_with_different_limits_do_not_spend_each_others_budget(
    settings, db, token, redis_client
):
    """A rolling change of the limit: a process with a large limit leases a slice of it (1 %)
    that alone is more than a smaller limit; the processes still on the smaller one go on
    charging their own budget."""
    caller = {"Authorization": f"Bearer {token('platform-admin', sub='limit-changing-caller')}"}
    large = create_app(replace(settings, rate_limit_cost_per_minute=10**9)).test_client()
    small = create_app(replace(settings, rate_limit_cost_per_minute=30000)).test_client()
    assert post(large, caller).status_code == 200  # leases 10,000,000
    answer = post(small, caller)
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["RateLimit-Remaining"] == str(30000 - MIN_CHARGE)


def test_rate_limiter_lets_requests_through_when_redis_is_down(settings, db, token):
    app = create_app(
        replace(settings, external_redis_url="redis://127.0.0.1:1/0", rate_limit_cost_per_minute=1)
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token('platform-admin')}"}
    for _ in range(3):
        answer = post(client, headers)
        assert answer.status_code == 200
        # Nothing known of the budget: no RateLimit headers, the cost all the same.
        assert "RateLimit-Remaining" not in answer.headers
        assert answer.get_json()["extensions"]["cost"]["remaining"] is None
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
