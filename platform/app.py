"""The application factory: one Flask app serving /graphql, health, metrics, the consoles' build
and the dev issuer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis
from flask import Flask

from villagelink.graphql.core.budget import Allowances
from villagelink.jobs.sync import enqueue_sync
from villagelink.platform.cors import register_cors
from villagelink.platform.db import Database
from villagelink.platform.http_errors import register_json_errors
from villagelink.platform.identity.callers import Callers
from villagelink.platform.identity.dev_issuer import DevIssuer
from villagelink.platform.identity.dev_issuer import blueprint as dev_issuer_blueprint
from villagelink.platform.identity.tokens import TokenVerifier, make_verifier
from villagelink.platform.live.channel import publisher
from villagelink.platform.settings import Settings, load_settings


@dataclass
class Runtime:
    """What every request shares: settings and the long-lived clients."""

    settings: Settings
    db: Database
    redis: redis.Redis
    verifier: TokenVerifier
    callers: Callers
    # This process's slices of callers' cost budgets (graphql/core/budget.py).
    allowances: Allowances = field(default_factory=Allowances)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, root_path=str(Path(__file__).parent))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    verifier = make_verifier(settings)
    runtime = Runtime(
        settings=settings,
        db=Database(
            settings.database_url,
            statement_timeout_ms=settings.statement_timeout_ms,
            after_shared_commit=partial(enqueue_sync, settings),
            announce_committed=publisher(settings.redis_url),
        ),
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2),
        verifier=verifier,
        # Kept no longer than the verifier keeps its keys (platform/identity/callers.py).
        callers=Callers(verifier, recheck_seconds=settings.jwks_cache_seconds),
    )
    app.extensions["villagelink"] = runtime
    logging.getLogger("villagelink").setLevel(logging.INFO)

    from villagelink.graphql.core.schema import executable_schema
    from villagelink.graphql.gateway import blueprint as graphql_blueprint
    from villagelink.platform.console import blueprint as console_blueprint
    from villagelink.platform.health import blueprint as health_blueprint
    from villagelink.platform.metrics import blueprint as metrics_blueprint
    from villagelink.storage.factory import register_object_endpoints

    register_json_errors(app)
    register_cors(app, settings.cors_allowed_origins)
    app.register_blueprint(health_blueprint)
    app.register_blueprint(metrics_blueprint)
    app.register_blueprint(graphql_blueprint)
    app.register_blueprint(console_blueprint(settings))
    register_object_endpoints(app, settings)
    # Built here, where gunicorn builds the app once before it forks (--preload), not by
    # each worker on its first request: that took 0.35 s of CPU while its client waited
    # (a batch of readings to a fresh worker: 1 s), and came after the worker's gc.freeze
    # (platform/gunicorn_hooks.py), so every full collection walked the schema too.
    executable_schema()
    if settings.dev_issuer_enabled:
        from villagelink.tenants.demo.accounts import DEMO_PASSWORD, demo_hint

        app.register_blueprint(
            dev_issuer_blueprint(
                DevIssuer(settings),
                runtime.db,
                runtime.redis,
                demo_usernames=demo_hint(),
                demo_password=DEMO_PASSWORD,
            )
        )
    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["villagelink"]
