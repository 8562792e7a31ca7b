"""The client examples of examples/ run as an integrator runs them, against the live gateway
(werkzeug on loopback, the app as gunicorn runs it) with the development issuer's token
endpoint and a real notify worker process delivering the webhooks: a client registered and
granted a village with the `villagelink clients` commands, a token by client credentials,
a subscription, a smoke sensor and its event, the verified alert webhook, and the
refusals of acknowledging that alert and of reading residents. Each step is checked here
from what the example returns and from what the platform stored."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server

from villagelink.graphql.core.ids import decode_id
from villagelink.jobs.queues import NOTIFY
from villagelink.platform.cli import main as villagelink
from villagelink.platform.settings import Settings
from villagelink.tenants.models import buildings
from villagelink.tenants.sensing.tables import alerts, devices

from .processes import SyncWorker
from .threaded_server import serving

EXAMPLES = Path(__file__).parent.parent / "examples"
TYPESCRIPT = EXAMPLES / "typescript"

pytestmark = [pytest.mark.worker_process, pytest.mark.usefixtures("job_env")]


def _load_python_example():
    """examples/python/device_platform.py as a module, from its file as a user runs it."""
    spec = importlib.util.spec_from_file_location(
        "device_platform", EXAMPLES / "python" / "device_platform.py"
    )
    module = importlib.util.module_from_spec(spec)
    # Its dataclass looks its module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Stack:
    graphql_url: str
    token_url: str


@pytest.fixture(scope="module")
def stack(app, settings: Settings, tmp_path_factory) -> Iterator[Stack]:
    """The gateway on a free port and `villagelink worker --queue notify` beside it."""
    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
        worker = SyncWorker(settings, tmp_path_factory.mktemp("notify") / "worker.log", NOTIFY)
        worker.start()
        base = f"http://127.0.0.1:{server.server_port}"
        # The issuer's path on this server: its `iss` names the configured public URL.
        issuer_path = settings.issuer.removeprefix(settings.public_url.rstrip("/"))
        try:
            yield Stack(f"{base}/graphql", f"{base}{issuer_path}/protocol/openid-connect/token")
        finally:
            worker.stop()


def cli(settings: Settings, *args: str) -> str:
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
        "VILLAGELINK_ENV": "test",
    }
    result = CliRunner().invoke(villagelink, ["clients", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def device_platform_client(settings: Settings, populated_village) -> tuple[str, str]:
    """A device platform's client, registered and granted the village as an operator
    does it; returns (client id, secret)."""
    client_id = f"sensors-{uuid.uuid4().hex[:8]}"
    registered = cli(
        settings,
        "register",
        client_id,
        "--name",
        "某设备平台",
        "--scope",
        "devices:write",
        "--scope",
        "alerts:read",
    )
    secret = re.search(r"client secret \(shown once\): (\S+)", registered).group(1)
    cli(settings, "grant", client_id, "--village", populated_village.slug)
    return client_id, secret


def a_building(db, slug: str) -> str:
    """Where the village asked the platform to install its sensor."""
    with db.tenant(slug) as conn:
        return conn.execute(select(func.min(buildings.c.name))).scalar_one()


def check_flow(
    db, slug: str, device: dict, ingest: dict, webhook: dict, refusals: dict[str, str]
) -> None:
    """What every example must have achieved, checked against the stored rows too."""
    assert (device["kind"], device["status"]) == ("SMOKE_SENSOR", "ACTIVE")
    assert (ingest["accepted"], ingest["duplicates"], ingest["itemErrors"]) == (1, 0, [])
    [alert_id] = ingest["alerts"]
    assert webhook["type"] == "alert.raised"
    assert webhook["village"] == slug
    assert webhook["data"]["alert"]["id"] == alert_id
    assert webhook["data"]["alert"]["kind"] == "smoke"
    # Out of a client's reach is NOT_FOUND, as for a village that does not exist.
    assert refusals == {"acknowledgeAlert": "NOT_FOUND", "residents": "NOT_FOUND"}
    with db.tenant(slug) as conn:
        stored = conn.execute(
            select(alerts.c.kind, alerts.c.acknowledged_at, devices.c.serial_number)
            .join(devices, devices.c.id == alerts.c.device_id)
            .where(alerts.c.id == int(decode_id(alert_id).key))
        ).one()
    assert stored.kind == "smoke"
    assert stored.acknowledged_at is None
    assert stored.serial_number.startswith("SMK-")


def test_the_python_example_runs_the_device_platform_flow(
    db, stack, populated_village, device_platform_client
):
    slug, building = populated_village.slug, a_building(db, populated_village.slug)
    client_id, secret = device_platform_client
    example = _load_python_example()
    outcome = example.run(stack.graphql_url, stack.token_url, client_id, secret, slug, building)
    assert outcome.token_type == "Bearer"
    assert outcome.subscription_state == "ACTIVE"
    check_flow(
        db,
        slug,
        outcome.device,
        outcome.ingest,
        outcome.webhook,
        outcome.refusals,
    )
    # Its endpoint takes only what the subscription's secret signed.
    endpoint = example.WebhookEndpoint()
    endpoint.secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    forged = Webhook("whsec_" + base64.b64encode(b"f" * 32).decode())
    body = json.dumps({"type": "alert.raised"}).encode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = forged.sign("msg_1", datetime.now(UTC), body.decode())
    with endpoint.serving():
        answer = requests.post(endpoint.url, data=body, headers=headers, timeout=10)
    assert answer.status_code == 401
    assert endpoint.events.empty()
    # A wrong secret gets no token: the example's first step fails loudly.
    with pytest.raises(requests.HTTPError):
        example.client_token(stack.token_url, client_id, secret + "x")


def _older(target: Path, sources: list[Path]) -> bool:
    """Whether `target` is missing or older than any of `sources`, as make judges it."""
    return not target.exists() or any(
        target.stat().st_mtime < source.stat().st_mtime for source in sources
    )


def _npm(*args: str, timeout: float) -> None:
    subprocess.run(["npm", *args], cwd=TYPESCRIPT, check=True, timeout=timeout)


def _built_typescript_example() -> None:
    """`npm ci` from the committed lockfile when node_modules is older than it (the
    Makefile's rule for it), then the typed documents generated from docs/schema.graphql
    and compiled with tsc when the build is older than the schema or the sources: a
    document or variable that does not match the schema fails here."""
    lock = [TYPESCRIPT / "package.json", TYPESCRIPT / "package-lock.json"]
    if _older(TYPESCRIPT / "node_modules" / ".package-lock.json", lock):
        _npm("ci", "--no-audit", "--no-fund", timeout=600)
    sources = [
        *lock,
        TYPESCRIPT / "codegen.yml",
        TYPESCRIPT / "tsconfig.json",
        EXAMPLES.parent / "docs" / "schema.graphql",
        *(TYPESCRIPT / "src").glob("*.ts"),
    ]
    if _older(TYPESCRIPT / "dist" / "device-platform.js", sources):
        _npm("run", "--silent", "build", timeout=300)


def test_the_typescript_example_runs_the_device_platform_flow(
    db, stack, populated_village, device_platform_client
):
    slug, building = populated_village.slug, a_building(db, populated_village.slug)
    assert shutil.which("node") and shutil.which("npm"), "Node.js 20 or later is needed"
    _built_typescript_example()
    client_id, secret = device_platform_client
    finished = subprocess.run(
        ["node", "dist/device-platform.js"],
        cwd=TYPESCRIPT,
        env={
            "PATH": os.environ["PATH"],
            "VILLAGELINK_GRAPHQL_URL": stack.graphql_url,
            "VILLAGELINK_TOKEN_URL": stack.token_url,
            "VILLAGELINK_CLIENT_ID": client_id,
            "VILLAGELINK_CLIENT_SECRET": secret,
            "VILLAGELINK_VILLAGE": slug,
            "VILLAGELINK_BUILDING": building,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    steps = {line["step"]: line for line in map(json.loads, finished.stdout.splitlines())}
    assert steps["token"]["tokenType"] == "Bearer"
    assert steps["subscribe"]["state"] == "ACTIVE"
    check_flow(
        db,
        slug,
        steps["register"]["device"],
        steps["send"]["ingest"],
        steps["webhook"]["event"],
        steps["refusals"]["codes"],
    )
