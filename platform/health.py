"""Liveness and readiness: /healthz says the process answers, /readyz that its servers
do, /healthz/workers that every queue has a live worker (a gateway stays ready without
one, so it is not part of /readyz: operators alert on it, docs/operations.md)."""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from villagelink.jobs.health import queue_health

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/healthz/workers")
def healthz_workers():
    from villagelink.platform.app import runtime_of

    try:
        queues = queue_health(runtime_of(current_app).redis)
    except redis.RedisError as exc:
        return jsonify(status="unavailable", error=type(exc).__name__), 503
    attended = not any(q.unattended for q in queues)
    body = {
        "status": "ok" if attended else "unattended",
        "queues": {
            q.name: {
                "workers": q.workers,
                "waiting": q.waiting,
                "oldestWaitingSeconds": round(q.oldest_waiting_seconds, 1),
            }
            for q in queues
        },
    }
    return jsonify(body), 200 if attended else 503


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
