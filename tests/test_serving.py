"""How the gateway's gunicorn spreads its clients over its worker processes."""

from __future__ import annotations

import gc
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from urllib.parse import urlsplit

import psutil
import pytest
import requests
from click.testing import CliRunner

from villagelink.platform.cli import main as cli
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.serving import gunicorn_command
from villagelink.platform.settings import load_settings

from .processes import Gateway, gateway, wait_for

# Each worker listens on a socket of its own and the kernel hashes every new connection
# to one of them: per connection a coin toss between two workers, so eight clients would
# all land on one worker in one run out of 128; sixteen, in one out of 32,768.
CLIENTS = 16


def _client_ports_served_by(pid: int, port: int) -> set[int]:
    """The client ports of the connections to `port` that process `pid` has accepted."""
    return {
        c.raddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


def _held_by_workers(served: Gateway, port: int) -> list[int]:
    """How many connections to `port` each worker holds now, fewest first."""
    return sorted(len(_client_ports_served_by(pid, port)) for pid in served.workers())


@contextmanager
def asking(clients: list[HTTPConnection], pause: float) -> Iterator[threading.Event]:
    """Each client asks for /healthz over its own connection every `pause` seconds until
    the block ends (http.client connects again by itself after a `Connection: close`)."""
    stop = threading.Event()

    def keep_asking(client: HTTPConnection) -> None:
        while not stop.is_set():
            client.request("GET", "/healthz")
            response = client.getresponse()
            response.read()
            assert response.status == 200
            stop.wait(pause)

    threads = [threading.Thread(target=keep_asking, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for client in clients:
            client.close()


@pytest.mark.worker_process
@pytest.mark.timeout(90)
def test_keep_alive_clients_opened_at_once_are_served_by_every_worker(settings, tmp_path):
    """Keep-alive clients connecting in one burst (a load balancer's pool, the race's
    threads) do not bunch on the worker that woke first: both of two workers serve some."""
    with gateway(settings, tmp_path / "gunicorn.log", GUNICORN_WORKERS="2") as served:
        address = urlsplit(served.url)
        # Connected all together before any sends: they wait in the kernel's accept
        # queue(s) at once, which is where one listening socket let one worker take all.
        clients = [
            HTTPConnection(address.hostname, address.port, timeout=10) for _ in range(CLIENTS)
        ]
        for client in clients:
            client.connect()

        def held_by_both() -> bool:
            # By the connections each holds now: a worker holding more than its share
            # closes some, and their clients connect again on other ports.
            held = _held_by_workers(served, address.port)
            return sum(held) == CLIENTS and len(held) == 2 and held[0] > 0

        # A request a tenth of a second keeps each connection inside gunicorn's
        # keep-alive time (2 s) while the workers' sockets are looked at.
        with asking(clients, 0.1):
            wait_for(held_by_both, 30, "every client's connection in one of both workers")


@pytest.mark.worker_process
@pytest.mark.timeout(90)
def test_keep_alive_clients_settle_evenly_over_the_workers(settings, tmp_path):
    """However the kernel's hash first splits eight keep-alive clients over two workers
    (5/3 or worse two runs in three), the worker holding more closes connections until
    each holds four, and they stay so."""
    with gateway(settings, tmp_path / "gunicorn.log", GUNICORN_WORKERS="2") as served:
        address = urlsplit(served.url)
        clients = [HTTPConnection(address.hostname, address.port, timeout=10) for _ in range(8)]
        with asking(clients, 0.02) as stop:
            even = [4, 4]
            wait_for(lambda: _held_by_workers(served, address.port) == even, 30, "4 and 4")
            for _ in range(5):
                stop.wait(0.2)
                assert _held_by_workers(served, address.port) == even


@pytest.mark.worker_process
@pytest.mark.timeout(90)
def test_a_worker_is_forked_with_the_schema_built(settings, tmp_path):
    """gunicorn builds the app once and forks its workers from it (--preload), the
    executable schema included: a worker's first GraphQL request does not build one of
    its own while its client waits (and after gc.freeze, which then leaves it out)."""
    with gateway(settings, tmp_path / "gunicorn.log", GUNICORN_WORKERS="1") as served:
        (pid,) = served.workers()
        worker = psutil.Process(pid)
        before = sum(worker.cpu_times()[:2])
        answer = requests.post(
            f"{served.url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {mint_for_role(served.settings, 'platform-admin')}"},
            timeout=10,
        )
        assert answer.json().get("data") == {"__typename": "Query"}, answer.text
        # Measured here: 0.35 s of the worker's CPU when it built the schema, 0.01 when not.
        assert sum(worker.cpu_times()[:2]) - before < 0.1


def test_a_gateway_refuses_a_port_something_listens_on(settings, tmp_path, monkeypatch):
    """SO_REUSEPORT would let a second gateway of the same user bind the port and take a
    share of the first one's connections: `villagelink gateway` refuses before gunicorn
    starts (`villagelink run` makes the same check)."""
    started: list[list[str]] = []

    def execve(_path, argv, _env):
        # Had the check let it through, gunicorn would have replaced the test's process.
        started.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        env = {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "VILLAGELINK_VAR_DIR": str(tmp_path),
            "VILLAGELINK_ENV": "test",
            "VILLAGELINK_PORT": str(other.getsockname()[1]),
        }
        refused = CliRunner().invoke(cli, ["gateway"], env=env)
        assert refused.exit_code != 0 and "already in use" in refused.output, refused.output
        assert started == []
    # Once nothing listens there, the same command goes on to gunicorn.
    assert CliRunner().invoke(cli, ["gateway"], env=env).exit_code == 0
    assert "--reuse-port" in started[0]


def test_a_worker_keeps_what_it_loaded_out_of_the_collector_and_collects_less_often():
    from types import SimpleNamespace

    from villagelink.platform import gunicorn_hooks

    before = gc.get_threshold()
    worker = SimpleNamespace(notify=lambda: None, cfg=SimpleNamespace(timeout=30))
    try:
        gunicorn_hooks.post_worker_init(worker)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (gunicorn_hooks.GC_YOUNG_OBJECTS, *before[1:])
        assert before[0] < gunicorn_hooks.GC_YOUNG_OBJECTS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize(
    ("raw", "logged"), [(None, False), ("", False), ("off", False), ("true", True), ("1", True)]
)
def test_the_access_log_is_written_only_when_asked_for(raw, logged):
    settings = load_settings({} if raw is None else {"ACCESS_LOG": raw})
    command = gunicorn_command(settings)
    assert ("--access-logfile" in command) is logged
    assert "--error-logfile" in command


def test_an_access_log_setting_that_is_no_yes_or_no_is_refused():
    with pytest.raises(ValueError, match="ACCESS_LOG"):
        load_settings({"ACCESS_LOG": "sometimes"})
