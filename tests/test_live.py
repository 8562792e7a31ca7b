"""Live events against a real live process (`villagelink live`) over real HTTP streams:
an alert committed through the gateway reaches its village's admin within 2 seconds,
a rolled-back one reaches nobody, another village's admin neither gets it nor may
subscribe to it, a bad token is refused, and 200 open streams leave the gateway
answering at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import requests
from sqlalchemy import select

from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.live.subscription import Follow, delivered
from villagelink.platform.app import runtime_of
from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database
from villagelink.platform.embedded import EmbeddedValkey, free_port
from villagelink.platform.live.channel import publisher
from villagelink.platform.live.client import Refused, subscription
from villagelink.platform.settings import Settings
from villagelink.tenants import live
from villagelink.tenants import models as tm
from villagelink.tenants.sensing.alerting import Trigger, raise_alerts

from .conftest import new_village
from .test_ingest import EVENTS, event, make_fleet, send

VILLAGELINK = str(Path(sys.executable).parent / "villagelink")
LIVE = """subscription Live($village: String, $kinds: [LiveEventKind!]) {
  liveEvents(village: $village, kinds: $kinds) { kind village subjectId occurredAt summary } }"""
# Within the 2 seconds of the commit.
DELIVERY_LIMIT = 2.0
# How long a test waits to be sure that nothing comes.
QUIET = 1.5


def run_async(coroutine):
    """`asyncio.run(coroutine)` in a thread of its own: in a pytest process that also ran
    browser tests, Playwright's sync API keeps an event loop running on the main thread,
    where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def live_process(settings: Settings, log: Path, redis_url: str | None = None) -> Iterator[str]:
    """A real live process on a free port, sharing the suite's database and issuer key
    (and its Redis unless told another); yields the stream's URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url or settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
        "VILLAGELINK_ENV": "test",
        "LIVE_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("VILLAGELINK_PORT", None)  # the issuer's URL follows it: keep the suite's
    process = subprocess.Popen(
        [VILLAGELINK, "live"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(f"{base}/healthz", process, log)
        yield f"{base}/graphql/stream"
    finally:
        process.terminate()
        process.wait(timeout=15)
        print(f"\n--- the live process said:\n{log.read_text()}")


def wait_for_health(url: str, process: subprocess.Popen, log: Path, limit: float = 30) -> None:
    """Until the live process says it is subscribed to Redis (200 from /healthz)."""
    deadline = time.monotonic() + limit
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"{url} not healthy within {limit} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def live_url(settings: Settings, db, tmp_path_factory) -> Iterator[str]:
    with live_process(settings, tmp_path_factory.mktemp("live") / "live.log") as url:
        yield url


def gateway_in_thread(call):
    """Run a gateway call (the Flask test client is synchronous) off the event loop;
    returns a future of its result and the moment it was made: the commit comes
    before the answer, so what arrives within the limit of that moment does too."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def run() -> None:
        started = time.monotonic()
        result = call()
        loop.call_soon_threadsafe(done.set_result, (result, started))

    threading.Thread(target=run, daemon=True).start()
    return done


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


async def collect(stream, into: list, until: int = 10**6) -> None:
    async for result in stream:
        into.append((time.monotonic(), result))
        if len(into) >= until:
            return


@pytest.mark.worker_process
def test_an_alert_committed_through_the_gateway_reaches_its_admin_within_2_seconds(
    live_url, db, gql, token, populated_village
):
    slug = populated_village.slug
    fleet = make_fleet(db, gql, token, slug, bands=1)
    admin = token("village-admin", village=slug)
    other = new_village(db).slug
    stranger = token("village-admin", village=other)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            # Another village's admin may not subscribe to this one, and is told so as JSON.
            with pytest.raises(Refused) as refused:
                async with subscription(session, live_url, stranger, LIVE, {"village": slug}):
                    pass
            assert (refused.value.status, refused.value.code) == (403, "FORBIDDEN")
            mine, theirs = [], []
            async with (
                subscription(session, live_url, admin, LIVE, {"village": slug}) as stream,
                subscription(session, live_url, stranger, LIVE) as their_stream,
            ):
                reading = asyncio.create_task(collect(stream, mine, until=2))
                watching = asyncio.create_task(collect(their_stream, theirs))
                body, committed = await gateway_in_thread(
                    lambda: send(gql, fleet.platform, EVENTS, [event(fleet.radar, "fall")])
                )
                await asyncio.wait_for(reading, DELIVERY_LIMIT + 1)
                await asyncio.sleep(QUIET)
                watching.cancel()
        return body, committed, mine, theirs

    body, committed, mine, theirs = run_async(scenario())
    [alert_id] = body["alerts"]
    (arrived, raised), (_, tasks) = mine
    print(f"\nALERT_RAISED arrived {1000 * (arrived - committed):.0f} ms after ingest was sent")
    assert arrived - committed < DELIVERY_LIMIT
    event_ = raised["data"]["liveEvents"]
    assert event_["kind"] == "ALERT_RAISED"
    assert (event_["village"], event_["subjectId"]) == (slug, alert_id)
    assert event_["summary"].startswith("新预警：跌倒")
    occurred = datetime.fromisoformat(event_["occurredAt"])
    assert abs((datetime.now(UTC) - occurred).total_seconds()) < 60
    assert tasks["data"]["liveEvents"]["kind"] == "TASKS_CHANGED"
    assert tasks["data"]["liveEvents"]["subjectId"] == alert_id
    assert theirs == []


@pytest.mark.worker_process
def test_a_rolled_back_alert_is_never_announced_and_a_committed_one_is(
    live_url, app, token, populated_village
):
    """Through the gateway's own database handle (which publishes): the alert raised in
    a transaction that rolls back, or in a savepoint that does, is not announced."""
    slug = populated_village.slug
    admin = token("village-admin", village=slug)
    database = runtime_of(app).db
    with database.tenant(slug) as conn:
        residents = conn.execute(select(tm.residents.c.id).limit(3)).scalars().all()
    now = datetime.now(UTC)
    actor = system_actor("live-test")

    def trigger(n: int) -> Trigger:
        resident = residents[n]
        return Trigger("sos", f"resident:{resident}", now, f"一键呼救 {n}", None, resident)

    def raise_in_transactions() -> int:
        with pytest.raises(RuntimeError), database.tenant(slug) as conn:
            raise_alerts(conn, actor, slug, [trigger(0)], now)
            raise RuntimeError("rolled back")
        with database.tenant(slug) as conn:
            with contextlib.suppress(RuntimeError), conn.begin_nested():
                raise_alerts(conn, actor, slug, [trigger(1)], now)
                raise RuntimeError("savepoint rolled back")
            [kept] = raise_alerts(conn, actor, slug, [trigger(2)], now)
        return kept.id

    async def scenario():
        got: list = []
        async with (
            aiohttp.ClientSession() as session,
            subscription(session, live_url, admin, LIVE, {"village": slug}) as stream,
        ):
            reading = asyncio.create_task(collect(stream, got))
            kept, _ = await gateway_in_thread(raise_in_transactions)
            await asyncio.sleep(QUIET)
            reading.cancel()
        return kept, got

    kept, got = run_async(scenario())
    events = [result["data"]["liveEvents"] for _, result in got]
    raised = [e for e in events if e["kind"] != "TASKS_CHANGED"]
    assert [(e["kind"], e["subjectId"]) for e in raised] == [
        ("ALERT_RAISED", encode_id("Alert", slug, kept))
    ]
    assert raised[0]["summary"] == "新预警：一键呼救 2"


@pytest.mark.worker_process
def test_refusals_are_json_with_a_code(live_url, token, populated_village):
    slug = populated_village.slug

    def post(headers: dict, body: dict | None = None) -> requests.Response:
        return requests.post(
            live_url,
            json=body or {"query": LIVE, "variables": {"village": slug}},
            headers={"Accept": "text/event-stream", **headers},
            timeout=10,
        )

    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = post(headers)
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    resident = token("resident", village=slug)
    answer = post({"Authorization": f"Bearer {resident}"})
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # A document that does not validate comes through the stream, as the protocol asks.
    admin = token("village-admin", village=slug)
    answer = post({"Authorization": f"Bearer {admin}"}, {"query": "subscription { nope }"})
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    assert '"GRAPHQL_VALIDATION_FAILED"' in answer.text
    assert answer.text.endswith("event: complete\ndata:\n\n")
    # The console's origin may ask first, with the headers it sends.
    preflight = requests.options(
        live_url,
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    elsewhere = requests.options(
        live_url,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


def test_the_gateway_refuses_subscriptions(gql, token, populated_village):
    status, body = gql(LIVE, token("village-admin", village=populated_village.slug))
    assert status == 400
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "/graphql/stream" in body["errors"][0]["message"]


STREAMS = 200


@pytest.mark.worker_process
def test_200_open_streams_leave_the_gateway_answering(live_url, db, gql, token, populated_village):
    slug = populated_village.slug
    fleet = make_fleet(db, gql, token, slug, bands=1)
    admin = token("village-admin", village=slug)

    async def scenario():
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            opened = asyncio.Event()
            received: list[float] = []
            count = 0

            async def one() -> None:
                nonlocal count
                async with subscription(
                    session, live_url, admin, LIVE, {"village": slug, "kinds": ["ALERT_RAISED"]}
                ) as stream:
                    count += 1
                    if count == STREAMS:
                        opened.set()
                    async for _ in stream:
                        received.append(time.monotonic())
                        return

            streams = [asyncio.create_task(one()) for _ in range(STREAMS)]
            await asyncio.wait_for(opened.wait(), 60)
            health = requests.get(live_url.replace("/graphql/stream", "/healthz"), timeout=5)
            assert health.json()["streams"] >= STREAMS
            ((status, body), query_seconds), _ = await gateway_in_thread(
                lambda: timed(lambda: gql("{ me { subject } }", admin))
            )
            _, committed = await gateway_in_thread(
                lambda: send(gql, fleet.platform, EVENTS, [event(fleet.radar, "fall")])
            )
            await asyncio.wait_for(asyncio.gather(*streams), 30)
            return status, body, query_seconds, committed, received

    status, body, query_seconds, committed, received = run_async(scenario())
    assert status == 200 and "errors" not in body
    latencies = sorted(t - committed for t in received)
    print(
        f"\n{STREAMS} open streams: a gateway query answered in {1000 * query_seconds:.0f} ms; "
        f"the alert reached all {len(received)} in {1000 * latencies[-1]:.0f} ms "
        f"(median {1000 * latencies[len(latencies) // 2]:.0f} ms)"
    )
    assert query_seconds < 0.5
    assert len(received) == STREAMS
    assert latencies[-1] < DELIVERY_LIMIT


@pytest.mark.worker_process
def test_the_live_process_subscribes_again_after_redis_restarts(
    settings, tmp_path, token, populated_village
):
    """Its own Valkey, stopped and started under an open stream: /healthz says 503 while
    Redis is away, the stream stays open, and an alert committed afterwards arrives."""
    valkey = EmbeddedValkey(tmp_path / "valkey", free_port(), durable=False)
    valkey.start()
    slug = populated_village.slug
    admin = token("village-admin", village=slug)
    database = Database(settings.database_url, announce_committed=publisher(valkey.url))
    with database.tenant(slug) as conn:
        resident = conn.execute(select(tm.residents.c.id).limit(1)).scalar_one()
    now = datetime.now(UTC)
    sos = Trigger("sos", f"resident:{resident}", now, "一键呼救", None, resident)
    healths: list[int] = []

    def raise_one() -> int:
        with database.tenant(slug) as conn:
            [raised] = raise_alerts(conn, system_actor("live-test"), slug, [sos], now)
        return raised.id

    def health_of(url: str) -> int:
        return requests.get(url.replace("/graphql/stream", "/healthz"), timeout=5).status_code

    async def scenario(url: str) -> tuple[int, list]:
        got: list = []
        async with (
            aiohttp.ClientSession() as session,
            subscription(
                session, url, admin, LIVE, {"village": slug, "kinds": ["ALERT_RAISED"]}
            ) as stream,
        ):
            reading = asyncio.create_task(collect(stream, got, until=1))
            valkey.stop()
            await asyncio.sleep(1.5)
            healths.append(await asyncio.to_thread(health_of, url))
            valkey.start()
            deadline = time.monotonic() + 15
            while await asyncio.to_thread(health_of, url) != 200:
                assert time.monotonic() < deadline, "not subscribed again within 15 s"
                await asyncio.sleep(0.2)
            alert_id = await asyncio.to_thread(raise_one)
            await asyncio.wait_for(reading, DELIVERY_LIMIT + 1)
        return alert_id, got

    try:
        with live_process(settings, tmp_path / "live.log", redis_url=valkey.url) as url:
            alert_id, [(_, result)] = run_async(scenario(url))
    finally:
        valkey.stop()
        database.dispose()
    assert healths == [503]
    assert result["data"]["liveEvents"]["subjectId"] == encode_id("Alert", slug, alert_id)


def follow_cases():
    admin = Follow(whole=True)
    worker = Follow(grids=frozenset({3, 4}), staff_id=9)
    coordinator = Follow(shared_only=True)
    return admin, worker, coordinator


def an_event(kind: str, subject_type: str, **fields) -> dict:
    base = {
        "kind": kind,
        "village": "liulin",
        "subjectType": subject_type,
        "subjectKey": 1,
        "grid": None,
        "staff": [],
        "shared": False,
        "state": "assigned",
        "text": "跌倒报警（毫米波雷达 3号楼）",
        "note": None,
        "occurredAt": "2026-12-06T06:00:00+00:00",
    }
    return base | fields


def test_who_gets_which_event_and_what_it_says():
    """The filter and the summaries, on the real schema's labels: a grid worker gets
    what concerns their grids or them, a coordinator the shared alerts only, and
    TASKS_CHANGED comes once per transaction to those whose tasks it touches."""
    schema = executable_schema()
    admin, worker, coordinator = follow_cases()
    kinds = frozenset(live.LIVE_EVENT_KINDS)
    elsewhere = an_event(live.ALERT_RAISED, "Alert", grid=7)
    mine = an_event(live.ALERT_CHANGED, "Alert", grid=4, state="acknowledged")
    handed_to_me = an_event(live.REQUEST_CHANGED, "Request", grid=7, staff=[9], text="路灯不亮")
    fire = an_event(live.ALERT_RAISED, "Alert", grid=7, shared=True, text="明火报警")
    escalated = an_event(live.REQUEST_CHANGED, "Request", note="超期未办结，已升级至联动片区")

    def got(follow: Follow, batch: list[dict], wanted=kinds) -> list[tuple[str, str]]:
        found = delivered(batch, {"liulin": follow}, wanted, schema)
        return [(e["kind"], e["summary"]) for e in found]

    assert got(worker, [elsewhere]) == []
    assert got(worker, [elsewhere, mine]) == [
        ("alert_changed", "预警「跌倒报警（毫米波雷达 3号楼）」已确认"),
        ("tasks_changed", "您的待办有更新：预警「跌倒报警（毫米波雷达 3号楼）」已确认"),
    ]
    assert got(worker, [handed_to_me]) == [
        ("request_changed", "诉求「路灯不亮」已派单"),
        ("tasks_changed", "您的待办有更新：诉求「路灯不亮」已派单"),
    ]
    assert got(coordinator, [elsewhere, handed_to_me, fire]) == [
        ("alert_raised", "新预警：明火报警")
    ]
    assert got(admin, [escalated], frozenset({live.REQUEST_CHANGED})) == [
        ("request_changed", "诉求「跌倒报警（毫米波雷达 3号楼）」超期未办结，已升级至联动片区")
    ]
    assert len(got(admin, [elsewhere, mine, fire])) == 4  # three events, one TASKS_CHANGED
    # A village the subscriber does not follow gives nothing.
    assert delivered([elsewhere], {"taoyuan": admin}, kinds, schema) == []
