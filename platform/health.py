"""Liveness and readiness: /healthz says the process answers, /readyz that its servers do."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz():
    from villagelink.platform.app import runtime_of

    runtime = runtime_of(current_app)
    checks: dict[str, str] = {}
    try:
        with runtime.db.platform() as conn:
            conn.execute(text("SELECT 1 FROM platform.tenants LIMIT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
