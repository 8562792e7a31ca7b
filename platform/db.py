"""The database engine and the two kinds of transaction the platform runs.

`Database.platform()` works on the platform schema as the application role.
`Database.tenant(slug)` is the only way into a village's data: it opens a
transaction and switches to the village's own NOLOGIN role and schema with
`SET LOCAL`, so a bug in a resolver meets "permission denied" instead of
another village's rows, and the setting ends with the transaction (safe behind
a transaction-pooling PgBouncer).

Behind PgBouncer in transaction mode (a URL ending in `?pgbouncer=true`, the marker
Prisma and others use) consecutive transactions of one client may run on different
server connections, so nothing may outlive a transaction there: no server-side prepared
statements (psycopg prepares a statement it ran five times on a connection) and no
startup `options` (PgBouncer refuses them). The statement timeout is then set with
`SET LOCAL` in every village and region transaction, and the platform's own statements
fall under the login role's default (docs/operations.md, "PgBouncer").

A village transaction that wrote to the outbox is followed, once committed, by
`after_shared_commit` (the sync's enqueue): the one place that does it for
requests and jobs alike, so a job's change reaches neighbours as fast as one
made through the gateway. Its live events (tenants/live.py) are announced then too,
by `announce_committed`: never before the commit, so a rollback announces nothing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import psycopg
from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError

from villagelink.tenants import live
from villagelink.tenants.outbox import wrote_outbox

log = logging.getLogger(__name__)


def json_parameter(value: object) -> bytes | str:
    """A JSON or JSONB parameter's text. orjson: the standard library's encoder was an
    eighth of an ingest batch's CPU (its thousand readings go to PostgreSQL as one JSON
    array). It writes datetimes as ISO 8601, as PostgreSQL reads them."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        # An integer past 64 bits (in a device's own details) is still a JSON number
        # PostgreSQL takes; a datetime beside it is written as PostgreSQL reads it.
        return json.dumps(value, default=str)


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


def hold_lock(conn: Connection, key: str) -> None:
    """Take the advisory lock named `key` (`structure:<village>`, `device-presence:<village>`)
    until the transaction ends: the one way the code serialises work no row lock covers,
    or covers in an order two transactions could take differently."""
    conn.execute(_ADVISORY_LOCK, {"key": key})


def _after_commit_failed(error: Exception, what: str) -> None:
    """Say what a committed transaction could not hand to Redis. Redis down or restarting
    is the everyday case (a write per request while Valkey restarts): one line each, not
    a traceback; anything else keeps its traceback."""
    if isinstance(error, RedisError | OSError):
        log.warning("%s: %s", what, error)
    else:
        log.exception(what)


SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,38}$")
TENANT_PREFIX = "vl_t_"
REGION_PREFIX = "vl_r_"
# What every village role (and every region role) may do outside its own schema is granted
# once, to one role each belongs to: PostgreSQL keeps a table's or schema's grants in one
# catalog row of at most 8 KB, and granted role by role they stopped fitting at about
# 2,100 villages ("row is too big" on the next GRANT).
VILLAGES_ROLE = "vl_villages"
REGIONS_ROLE = "vl_regions"
# The query parameter that says a URL leads to PgBouncer in transaction mode.
POOLED_MARKER = "pgbouncer"
# Where a village or region transaction notes the access epoch it began at.
ACCESS_EPOCH = "access_epoch"


class InvalidSlug(ValueError):
    """A village slug that cannot name a schema and role."""


def validate_slug(slug: str) -> str:
    if not SLUG_PATTERN.fullmatch(slug or ""):
        raise InvalidSlug(
            f"village slug {slug!r} must be 2-39 characters of a-z, 0-9 and _, "
            "starting with a letter"
        )
    return slug


def tenant_role(slug: str) -> str:
    """Schema and role name of a village: the same identifier for both."""
    return TENANT_PREFIX + validate_slug(slug)


def region_role(region_id: str) -> str:
    """The role a coordinator's reads of the exchange schema run under."""
    return REGION_PREFIX + validate_slug(region_id)


class Database:
    def __init__(
        self,
        url: str,
        *,
        statement_timeout_ms: int = 5000,
        pool_size: int = 10,
        after_shared_commit: Callable[[list[str]], None] | None = None,
        announce_committed: Callable[[list[dict]], None] | None = None,
    ):
        self.url = url
        self.after_shared_commit = after_shared_commit
        self.announce_committed = announce_committed
        # Every statement is bounded; a runaway query from a cross-village report cannot
        # hold a worker forever.
        self.statement_timeout_ms = int(statement_timeout_ms)
        target = make_url(url)
        self.pooled = target.query.get(POOLED_MARKER) == "true"
        connect_args: dict = {"application_name": "villagelink"}
        if self.pooled:
            connect_args["prepare_threshold"] = None
        else:
            connect_args["options"] = f"-c statement_timeout={self.statement_timeout_ms}"
        self.engine: Engine = create_engine(
            target.difference_update_query([POOLED_MARKER]),
            pool_size=pool_size,
            max_overflow=pool_size,
            # No ping on every checkout (a round trip per transaction on the hot path):
            # a connection idle for a while is pinged (`_ping_if_idle`), and one that died
            # while in use fails the first statement of `_begin_as`, which begins again.
            pool_pre_ping=False,
            pool_recycle=1800,
            connect_args=connect_args,
            json_serializer=json_parameter,
        )
        event.listen(self.engine, "checkin", _note_idle)
        event.listen(self.engine, "checkout", self._ping_if_idle)

    @contextmanager
    def platform(self) -> Iterator[Connection]:
        """A transaction as the application role, for the platform schema (whose
        tables are always named with their schema, so no search_path is set).

        Its connection is pinged first (as `pool_pre_ping` did for every checkout): the
        caller's statements cannot be run again if the server dropped it. Reads keep off
        this path (a query's reach is kept, platform/identity/callers.py)."""
        with self.engine.connect() as conn:
            dbapi_connection = conn.connection.dbapi_connection
            assert dbapi_connection is not None  # a checked-out connection has one
            try:
                self.engine.dialect.do_ping(dbapi_connection)
            except psycopg.Error:
                conn.invalidate()  # the next statement runs on a new connection
            with conn.begin():
                yield conn

    @contextmanager
    def tenant(self, slug: str) -> Iterator[Connection]:
        """A transaction inside one village, under that village's role."""
        conn = self.begin_tenant(slug)
        try:
            yield conn
            shared = self.commit_tenant(conn)
        finally:
            conn.close()  # rolls back whatever was not committed
        if shared:
            self.shared_committed([slug])

    def commit_tenant(self, conn: Connection) -> bool:
        """Commit a village transaction; returns whether it wrote to the outbox, in
        which case the caller calls `shared_committed` once its commits are done.
        The transaction's live events are announced now. Redis is only their transport:
        a failure is logged, never raised (the change stands, and a console reloading
        sees it)."""
        conn.commit()
        announcements = live.taken(conn)
        if announcements and self.announce_committed is not None:
            try:
                self.announce_committed(announcements)
            except Exception as error:
                _after_commit_failed(error, f"could not announce {len(announcements)} live events")
        return wrote_outbox(conn)

    def shared_committed(self, slugs: list[str]) -> None:
        """`slugs` committed changes to their outboxes: ask for their sync now rather
        than at the next sweep. A failure here loses nothing (the changes are in the
        outbox and the sweep finds them), so it is logged, not raised."""
        if not slugs or self.after_shared_commit is None:
            return
        try:
            self.after_shared_commit(sorted(set(slugs)))
        except Exception as error:
            _after_commit_failed(error, f"could not ask for the sync of {', '.join(slugs)}")

    def begin_tenant(self, slug: str) -> Connection:
        """Open a connection inside one village; the caller commits and closes it
        (for a request that keeps one transaction per village until it ends)."""
        # The schema is named like the role: a lower-case identifier that needs no quotes.
        role = tenant_role(slug)
        return self._begin_as(role, role)

    @contextmanager
    def region(self, region_id: str) -> Iterator[Connection]:
        """A read of the exchange schema as a region's coordinators: row-level
        security shows the copies of that region only."""
        conn = self.begin_region(region_id)
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()

    def begin_region(self, region_id: str) -> Connection:
        """Open a connection as a region's role; the caller commits and closes it."""
        return self._begin_as(region_role(region_id), "exchange")

    def _begin_as(self, role: str, search_path: str) -> Connection:
        """A connection in a transaction under `role` (a validated identifier) with
        `search_path` and the statement timeout, all for this transaction only
        (`set_config(..., true)` is `SET LOCAL`; the timeout again, as behind PgBouncer
        the connection's own cannot be set). The same statement reads the access epoch
        (migration ac0001) as the application role, before the role changes, into
        `conn.info[ACCESS_EPOCH]`: a request with a kept reach checks it there at no
        extra round trip."""
        for attempt in range(2):
            conn = self.engine.connect()
            # `info` lives with the pooled DBAPI connection: what an earlier transaction
            # noted there (e.g. that it wrote to the outbox) is not this one's.
            conn.info.clear()
            try:
                conn.begin()
                conn.info[ACCESS_EPOCH] = conn.exec_driver_sql(
                    f"SELECT value, set_config('role', '{role}', true), "
                    f"set_config('search_path', '{search_path}', true), "
                    f"set_config('statement_timeout', '{self.statement_timeout_ms}', true) "
                    "FROM platform.access_epoch"
                ).scalar_one()
            except DBAPIError as exc:
                conn.close()
                # The server dropped the connection (a restart, a terminated backend):
                # SQLAlchemy has discarded it and every older one in the pool. Nothing ran
                # yet, so the transaction begins once more, on a new connection.
                if exc.connection_invalidated and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return conn
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _ping_if_idle(self, dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except psycopg.Error as exc:
            # The pool discards this connection and checks out another.
            raise DisconnectionError() from exc

    def dispose(self) -> None:
        self.engine.dispose()


# A pooled connection unused for longer than this is pinged before it is handed out
# (a server restart or an idle timeout may have closed it); busier ones are not.
IDLE_PING_SECONDS = 10.0
_IDLE_SINCE = "idle_since"


def _note_idle(_dbapi_connection, record) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint a write broke, as PostgreSQL reports it: how an action
    tells one unique rule from another."""
    orig = exc.orig
    return orig.diag.constraint_name if isinstance(orig, psycopg.Error) else None
