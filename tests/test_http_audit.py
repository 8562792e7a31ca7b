"""The GraphQL-over-HTTP audits of the `graphql-http` package, against the live gateway.

The gateway serves on loopback (werkzeug in a thread, the app exactly as gunicorn runs it) and
`tests/http_audit/audit.mjs` runs the package's `serverAudits` against it with Node. Every MUST
and every SHOULD has to pass; MAYs are the server's choice. `make test` installs the package
with `npm ci` from the committed lockfile.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from .threaded_server import serving

AUDIT_DIR = Path(__file__).parent / "http_audit"


@pytest.fixture(scope="module")
def live_url(app) -> Iterator[str]:
    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
        yield f"http://127.0.0.1:{server.server_port}/graphql"


def _audit(url: str, token: str) -> list[dict]:
    node = shutil.which("node")
    assert node, "Node.js (20 or later) is needed for the GraphQL-over-HTTP audit"
    assert (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(), (
        "run `npm ci` in tests/http_audit (make test does)"
    )
    finished = subprocess.run(
        [node, "audit.mjs"],
        cwd=AUDIT_DIR,
        env={"PATH": "/usr/bin:/bin", "AUDIT_URL": url, "AUDIT_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in finished.stdout.splitlines() if line.strip()]


def test_every_must_and_should_of_graphql_http_passes(live_url, token):
    results = _audit(live_url, token("integrator"))
    # The package's list, not ours: fewer results would mean the script stopped early.
    assert len(results) > 30
    failed = [
        result
        for result in results
        if result["name"].startswith(("MUST", "SHOULD")) and result["status"] != "ok"
    ]
    assert failed == []
