"""Settings read from the environment, with the embedded defaults of `make run`.

Every external part is switched by one variable: when it is set, the embedded
server for that part does not start. docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Development defaults, clearly not secrets: the embedded servers listen on
# loopback only and are created fresh under ./var/ by `make run`.
EMBEDDED_DB_USER = "villagelink"
EMBEDDED_DB_PASSWORD = "villagelink-dev-only"
EMBEDDED_DB_NAME = "villagelink"


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    var_dir: Path = Path("var")
    # None means: the embedded server (started by `villagelink run`) is used.
    external_database_url: str | None = None
    # Where work that needs a session of its own connects (migrations, provisioning from
    # the command line, pg_dump) when DATABASE_URL leads to PgBouncer in transaction mode.
    external_database_direct_url: str | None = None
    external_redis_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    # The live process (GraphQL subscriptions over graphql-sse) listens on a port of its
    # own, so that open streams never hold the gateway's request threads.
    live_port: int = 8001
    live_public_url: str = "http://127.0.0.1:8001"
    # The console's build (console/ built by Vite), served at /, /console/ and /h5/.
    console_dist: Path = Path(__file__).resolve().parents[1] / "console" / "dist"
    embedded_postgres_port: int = 54329
    embedded_redis_port: int = 63799
    # Identity: with KEYCLOAK_URL unset the built-in development issuer signs tokens.
    keycloak_url: str | None = None
    keycloak_realm: str = "villagelink"
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str = "villagelink-api"
    # How long a fetched JWKS is trusted before it is fetched again (an unknown
    # `kid` refetches at once): bounds how long a removed key keeps working.
    jwks_cache_seconds: int = 300
    jwks_min_refresh_seconds: int = 10
    # The service account that provisions groups and users in the realm.
    keycloak_admin_client_id: str = "villagelink-provisioner"
    keycloak_admin_client_secret: str | None = None
    # Object store: with S3_ENDPOINT unset, the local-disk backend under var/.
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket_prefix: str = "vl-"
    # Gateway limits.
    max_body_bytes: int = 1024 * 1024
    max_query_depth: int = 10
    # Values an answer may hold, lists at their page or assumed size (graphql/core/limits.py).
    max_query_cost: int = 50000
    max_page_size: int = 100
    statement_timeout_ms: int = 5000
    # Past this, a request's remaining fields fail with DEADLINE_EXCEEDED.
    request_deadline_ms: int = 20000
    # What one caller's requests may cost a minute (graphql/core/budget.py): each request is
    # charged its query's cost, at least 100.
    rate_limit_cost_per_minute: int = 300000
    # Origins (scheme://host[:port]) whose pages may call the API from a browser;
    # empty means same-origin only, "*" any origin. See platform/cors.py.
    cors_allowed_origins: frozenset[str] = frozenset()
    # Client ids (`azp`) that may run registered persisted documents only: the consoles'
    # own clients in production (graphql/core/persisted.py).
    persisted_documents_only_clients: frozenset[str] = frozenset()
    # Three processes of two threads on a 2-core machine: a request's Python holds its
    # process's interpreter lock, and four threads of a process took turns at it for
    # more CPU than two do (the page of 50 in bench/race: 2.0 ms of CPU a request at
    # concurrency 8, against 1.8). Six requests still run at once (docs/configuration.md).
    gunicorn_workers: int = 3
    gunicorn_threads: int = 2
    # A request running longer than this wedges its worker, which is killed and replaced.
    gunicorn_timeout_seconds: int = 60
    # gunicorn's access log, a line per HTTP request: off unless asked for (docs/configuration.md).
    access_log: bool = False
    # A webhook subscription failing without a break for this long is paused.
    webhook_pause_after_hours: int = 24
    # Seconds to wait after a webhook delivery's 1st, 2nd, ... failed attempt; after the
    # last the delivery has failed. Eight attempts over about nine hours.
    webhook_retry_delays: tuple[int, ...] = (10, 30, 120, 600, 1800, 7200, 21600)

    @property
    def database_url(self) -> str:
        if self.external_database_url:
            return self.external_database_url
        return (
            f"postgresql+psycopg://{EMBEDDED_DB_USER}:{EMBEDDED_DB_PASSWORD}"
            f"@127.0.0.1:{self.embedded_postgres_port}/{EMBEDDED_DB_NAME}"
        )

    @property
    def database_direct_url(self) -> str:
        return self.external_database_direct_url or self.database_url

    @property
    def redis_url(self) -> str:
        return self.external_redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def dev_issuer_enabled(self) -> bool:
        return self.keycloak_url is None and self.oidc_issuer is None

    @property
    def issuer(self) -> str:
        if self.oidc_issuer:
            return self.oidc_issuer
        if self.keycloak_url:
            return f"{self.keycloak_url.rstrip('/')}/realms/{self.keycloak_realm}"
        return f"{self.public_url.rstrip('/')}/dev-issuer/realms/{self.keycloak_realm}"

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def dev_issuer_key_path(self) -> Path:
        return self.var_dir / "dev-issuer" / "signing-key.pem"


# How a yes-or-no setting may be spelt; unset or empty is no.
_FLAGS = {"": False, "0": False, "false": False, "no": False, "off": False}
_FLAGS |= {"1": True, "true": True, "yes": True, "on": True}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from `environ` (os.environ by default)."""
    env = os.environ if environ is None else environ
    get = env.get

    def num(name: str, default: int) -> int:
        raw = get(name)
        return int(raw) if raw not in (None, "") else default

    def flag(name: str) -> bool:
        raw = (get(name) or "").strip().lower()
        if raw not in _FLAGS:
            raise ValueError(f"{name} must be one of {', '.join(sorted(_FLAGS))}: {raw!r}")
        return _FLAGS[raw]

    host = get("VILLAGELINK_HOST", "127.0.0.1")
    port = num("VILLAGELINK_PORT", 8000)
    return Settings(
        env=get("VILLAGELINK_ENV", "development"),
        var_dir=Path(get("VILLAGELINK_VAR_DIR", "var")).resolve(),
        external_database_url=_sqlalchemy_url(get("DATABASE_URL")),
        external_database_direct_url=_sqlalchemy_url(get("DATABASE_DIRECT_URL")),
        external_redis_url=get("REDIS_URL") or None,
        http_host=host,
        http_port=port,
        public_url=get("VILLAGELINK_PUBLIC_URL", f"http://{host}:{port}"),
        live_port=num("LIVE_PORT", port + 1),
        live_public_url=get("LIVE_PUBLIC_URL", f"http://{host}:{num('LIVE_PORT', port + 1)}"),
        console_dist=Path(get("CONSOLE_DIST") or Settings.console_dist).resolve(),
        embedded_postgres_port=num("EMBEDDED_POSTGRES_PORT", 54329),
        embedded_redis_port=num("EMBEDDED_REDIS_PORT", 63799),
        keycloak_url=get("KEYCLOAK_URL") or None,
        keycloak_realm=get("KEYCLOAK_REALM", "villagelink"),
        oidc_issuer=get("OIDC_ISSUER") or None,
        oidc_jwks_url=get("OIDC_JWKS_URL") or None,
        oidc_audience=get("OIDC_AUDIENCE", "villagelink-api"),
        jwks_cache_seconds=num("OIDC_JWKS_CACHE_SECONDS", 300),
        jwks_min_refresh_seconds=num("OIDC_JWKS_MIN_REFRESH_SECONDS", 10),
        keycloak_admin_client_id=get("KEYCLOAK_ADMIN_CLIENT_ID", "villagelink-provisioner"),
        keycloak_admin_client_secret=get("KEYCLOAK_ADMIN_CLIENT_SECRET") or None,
        s3_endpoint=get("S3_ENDPOINT") or None,
        s3_access_key=get("S3_ACCESS_KEY") or None,
        s3_secret_key=get("S3_SECRET_KEY") or None,
        s3_region=get("S3_REGION", "us-east-1"),
        s3_bucket_prefix=get("S3_BUCKET_PREFIX", "vl-"),
        max_body_bytes=num("GRAPHQL_MAX_BODY_BYTES", 1024 * 1024),
        max_query_depth=num("GRAPHQL_MAX_DEPTH", 10),
        max_query_cost=num("GRAPHQL_MAX_COST", 50000),
        max_page_size=num("GRAPHQL_MAX_PAGE_SIZE", 100),
        statement_timeout_ms=num("DB_STATEMENT_TIMEOUT_MS", 5000),
        request_deadline_ms=num("GRAPHQL_DEADLINE_MS", 20000),
        rate_limit_cost_per_minute=num("RATE_LIMIT_COST_PER_MINUTE", 300000),
        cors_allowed_origins=frozenset(
            origin.strip().rstrip("/")
            for origin in get("CORS_ALLOWED_ORIGINS", "").split(",")
            if origin.strip()
        ),
        persisted_documents_only_clients=frozenset(
            client.strip()
            for client in get("PERSISTED_DOCUMENTS_ONLY_CLIENTS", "").split(",")
            if client.strip()
        ),
        gunicorn_workers=num("GUNICORN_WORKERS", Settings.gunicorn_workers),
        gunicorn_threads=num("GUNICORN_THREADS", Settings.gunicorn_threads),
        gunicorn_timeout_seconds=num("GUNICORN_TIMEOUT", 60),
        access_log=flag("ACCESS_LOG"),
        webhook_pause_after_hours=num("WEBHOOK_PAUSE_AFTER_HOURS", 24),
        webhook_retry_delays=_seconds_list(get("WEBHOOK_RETRY_DELAYS"))
        or Settings.webhook_retry_delays,
    )


def _seconds_list(raw: str | None) -> tuple[int, ...]:
    """`10,30,120` as (10, 30, 120); unset or empty as (). A wait must be at least 1 s."""
    waits = tuple(int(part) for part in (raw or "").split(",") if part.strip())
    if any(wait < 1 for wait in waits):
        raise ValueError(f"waits of at least 1 s expected, got {raw!r}")
    return waits


def _sqlalchemy_url(url: str | None) -> str | None:
    """Accept the usual postgres:// and postgresql:// forms; the driver is psycopg 3."""
    if not url:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
