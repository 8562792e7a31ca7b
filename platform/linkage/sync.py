"""The sync: a village's outbox, published into the exchange schema.

One transaction per batch, as the application role, which switches to the
village's role only to read its outbox (`SET LOCAL ROLE` and back): the cursor
row is locked first, so two workers never sync one village at once, and a worker
killed mid-batch leaves the cursor where it was (nothing published, nothing
lost).

The cursor moves in (transaction id, outbox id) order and never past the oldest
transaction still running (`pg_snapshot_xmin(pg_current_snapshot())`): every
transaction older than that has ended, so its rows are all visible or never will
be, and a transaction that commits late, however late, is read when it does.
Rows of newer transactions wait even when committed; the job asks again shortly.

Copies are upserts keyed by (origin, record type, origin id, audience) and only
ever replaced by a newer version or a changed allow-list, so a job run twice, or
a batch read again after a crash, changes nothing and logs nothing.

What each audience receives is the agreement's business (`policy.audiences`):
only the fields its agreements allow leave the village schema, and an audience
that no agreement covers any more loses its copy (`reconcile_village`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from sqlalchemy import BigInteger, Connection, Integer, Select, and_, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import aliased

from villagelink.platform import models as pm
from villagelink.platform.db import Database, tenant_role
from villagelink.platform.linkage import policy
from villagelink.platform.linkage.catalogue import (
    AUDIENCE_KEY,
    BY_OUTBOX_TYPE,
    RECORD_TYPES,
    RESIDENT_TRANSFER,
)
from villagelink.platform.linkage.tables import (
    ACCEPTED,
    PUBLISH,
    REGION_AUDIENCE,
    WITHDRAW,
    agreement_parties,
    agreements,
    cursors,
    log,
    records,
)
from villagelink.tenants.outbox import DELETE, Xid8, outbox
from villagelink.tenants.querying import limit_of

BATCH = 500
# Rows per multi-row statement (copies written, copies withdrawn): PostgreSQL takes at
# most 65,535 parameters in one, and a copy takes ten. A reconcile writes every copy of
# a village at once: one of 30,000 shared activities failed for good, retried in vain.
STATEMENT_ROWS = 2000

# Withdrawal reasons, as the exchange log shows them to both sides.
DELETED_AT_ORIGIN = "deleted at origin"
NOT_COVERED = "no agreement in force covers this audience"
LEFT_REGION = "no longer the region's (its type's region_while)"

# Copies the receiving village acts on as they arrive: a transferred resident is
# created in the destination village in the same transaction as the copy.
INBOUND: dict[str, str] = {
    RESIDENT_TRANSFER: "villagelink.tenants.residents.transfers:receive_transfer",
}


@dataclass
class SyncResult:
    village: str
    read: int = 0
    published: int = 0
    withdrawn: int = 0
    cursor: int = 0
    # Committed changes wait behind a transaction still running: sync again shortly.
    waiting: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """The latest outbox row of one record."""

    outbox_id: int
    record_type: str  # the agreement's name for it (catalogue)
    record_id: int
    operation: str
    version: int
    payload: dict
    committed_at: Any


def sync_village(db: Database, slug: str, *, batch: int = BATCH) -> SyncResult:
    """Publish everything `slug` wrote since its cursor, batch by batch."""
    result = SyncResult(slug)
    try:
        while True:
            with db.platform() as conn:
                cursor = _lock_cursor(conn, slug)
                rows = _read_outbox(conn, slug, after=_position(cursor), limit=batch)
                if rows:
                    result.read += len(rows)
                    published, withdrawn = _publish(conn, slug, _latest(rows), full=False)
                    result.published += published
                    result.withdrawn += withdrawn
                last = len(rows) < batch
                result.cursor, result.waiting = _advance(conn, slug, cursor, rows, final=last)
            if last:
                return result
    except Exception as error:
        _note_failure(db, slug, error)
        raise


def reconcile_village(db: Database, slug: str) -> SyncResult:
    """Rebuild every copy `slug` publishes from its outbox and the agreements now in
    force: publish what a new agreement covers, withdraw what none does any more.
    Runs after agreements change (accepted, revoked, left, expired). The cursor
    stays where the incremental sync left it."""
    result = SyncResult(slug)
    try:
        with db.platform() as conn:
            cursor = _lock_cursor(conn, slug)
            rows = _read_outbox(conn, slug, after=None, limit=None, latest_only=True)
            result.read, result.cursor = len(rows), cursor["outbox_id"]
            result.published, result.withdrawn = _publish(
                conn, slug, _latest(rows), full=True, synced_to=result.cursor
            )
    except Exception as error:
        _note_failure(db, slug, error)
        raise
    return result


# Villages whose outboxes one transaction of the sweep reads. A transaction keeps a lock
# on every table it read until it ends, and the lock table holds max_locks_per_transaction
# (64) times max_connections (100) of them: read in one transaction, the outboxes of
# 10,000 villages ran out of shared memory at the first sweep.
SWEEP_BATCH = 500


def villages_behind(db: Database) -> list[str]:
    """Active villages whose outbox is ahead of their cursor, or whose last sync
    failed: what the periodic sweep enqueues."""
    with db.platform() as conn:
        slugs = (
            conn.execute(
                select(pm.tenants.c.slug)
                .where(pm.tenants.c.status == "active")
                .order_by(pm.tenants.c.slug)
            )
            .scalars()
            .all()
        )
        state = {row["village"]: row for row in conn.execute(select(cursors)).mappings()}
    behind = []
    for start in range(0, len(slugs), SWEEP_BATCH):
        with db.platform() as conn:
            for slug in slugs[start : start + SWEEP_BATCH]:
                known = state.get(slug)
                if known is not None and known["last_error"] is not None:
                    behind.append(slug)
                    continue
                with as_village(conn, slug):
                    ahead = conn.execute(select(_after(_position(known)).exists())).scalar_one()
                if ahead:
                    behind.append(slug)
    return behind


def villages_to_reconcile(db: Database, *, recent_minutes: int = 3) -> list[str]:
    """Villages whose copies may no longer match the agreements: some copy's
    agreements are none of them in force any more (revoked, expired, a party left),
    or an agreement of theirs changed in the last minutes (a new audience may be
    owed what is already there). The sweep reconciles them, so a lost reconcile job
    delays a withdrawal by a minute at most."""
    a, p = agreements, agreement_parties
    origin_party, audience_party = aliased(p), aliased(p)
    covered = (
        select(a.c.id)
        .join(origin_party, and_(origin_party.c.agreement_id == a.c.id))
        .join(audience_party, and_(audience_party.c.agreement_id == a.c.id))
        .where(
            a.c.id == func.any(records.c.agreement_ids),
            policy.in_force(),
            records.c.record_type == func.any(a.c.record_types),
            origin_party.c.village == records.c.origin,
            origin_party.c.state == ACCEPTED,
            audience_party.c.village == records.c.audience,
            audience_party.c.state == ACCEPTED,
        )
    )
    with db.platform() as conn:
        stale = set(
            conn.execute(
                select(records.c.origin)
                .distinct()
                .where(records.c.audience != REGION_AUDIENCE, ~covered.exists())
            ).scalars()
        )
        changed = set(
            conn.execute(
                select(p.c.village)
                .distinct()
                .join(a, a.c.id == p.c.agreement_id)
                .where(a.c.updated_at > func.now() - timedelta(minutes=recent_minutes))
            ).scalars()
        )
    return sorted(stale | changed)


# -- steps ---------------------------------------------------------------------


def _lock_cursor(conn: Connection, slug: str) -> dict:
    """The village's cursor row, locked for this transaction: one sync per village
    at a time; another job for it waits here and then finds nothing new."""
    conn.execute(insert(cursors).values(village=slug).on_conflict_do_nothing())
    return dict(
        conn.execute(select(cursors).where(cursors.c.village == slug).with_for_update())
        .mappings()
        .one()
    )


@contextmanager
def as_village(conn: Connection, slug: str) -> Iterator[Connection]:
    """Switch a platform transaction to the village's role and schema (to read its
    outbox, or to hand it a copy it acts on), and back."""
    role = tenant_role(slug)
    conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"; SET LOCAL search_path TO "{role}"')
    yield conn
    conn.exec_driver_sql("SET LOCAL ROLE NONE; SET LOCAL search_path TO DEFAULT")


def _position(cursor: Mapping | None) -> tuple[int, int]:
    """(transaction id, outbox id) of the last row the cursor went past."""
    return (cursor["outbox_xid"], cursor["outbox_id"]) if cursor else (0, 0)


def _after(position: tuple[int, int]) -> Select:
    """Outbox rows after `position` in (transaction id, id) order."""
    o = outbox
    return select(o).where(
        tuple_(o.c.xid, o.c.id)
        > tuple_(literal(position[0], Xid8()), literal(position[1], BigInteger()))
    )


# Every transaction with an id below this has ended (in the statement's snapshot).
_HORIZON = func.pg_snapshot_xmin(func.pg_current_snapshot())


def _read_outbox(
    conn: Connection,
    slug: str,
    *,
    after: tuple[int, int] | None,
    limit: int | None,
    latest_only: bool = False,
) -> list[dict]:
    """Outbox rows after `after` in (transaction id, id) order, every type (the cursor
    moves over unshared ones too), of transactions older than the oldest still running
    (so none can appear behind them later); or, with `latest_only`, each shared
    record's newest row."""
    o = outbox
    if latest_only:
        query = (
            select(o)
            .where(o.c.record_type.in_(BY_OUTBOX_TYPE))
            .ext(distinct_on(o.c.record_type, o.c.record_id))
            .order_by(o.c.record_type, o.c.record_id, o.c.id.desc())
        )
    else:
        query = (
            _after(after or (0, 0))
            .where(o.c.xid < _HORIZON)
            .order_by(o.c.xid, o.c.id)
            .limit(limit_of(limit))
        )
    with as_village(conn, slug):
        return [dict(row) for row in conn.execute(query).mappings()]


def _advance(
    conn: Connection, slug: str, cursor: dict, rows: list[dict], *, final: bool
) -> tuple[int, bool]:
    """Move the cursor past the rows read. After the `final` batch, note whether
    committed rows wait behind a transaction still running. Returns the new position
    (its outbox id) and whether rows wait."""
    xid, position = (rows[-1]["xid"], rows[-1]["id"]) if rows else _position(cursor)
    waiting = False
    if final:
        with as_village(conn, slug):
            waiting = conn.execute(select(_after((xid, position)).exists())).scalar_one()
    now = func.clock_timestamp()
    conn.execute(
        cursors.update()
        .where(cursors.c.village == cursor["village"])
        .values(
            outbox_xid=xid,
            outbox_id=position,
            updated_at=now,
            attempts=0,
            last_error=None,
            failed_at=None,
            waiting_since=func.coalesce(cursors.c.waiting_since, now) if waiting else None,
        )
    )
    return position, waiting


def _note_failure(db: Database, slug: str, error: Exception) -> None:
    """Keep why the village's sync failed where admins and /metrics see it; the job
    itself is retried by RQ with a backoff and, after that, by the sweep."""
    with db.platform() as conn:
        conn.execute(
            insert(cursors)
            .values(village=slug, attempts=1, last_error=repr(error)[:2000], failed_at=func.now())
            .on_conflict_do_update(
                index_elements=[cursors.c.village],
                set_={
                    "attempts": cursors.c.attempts + 1,
                    "last_error": repr(error)[:2000],
                    "failed_at": func.now(),
                },
            )
        )


def _latest(rows: list[dict]) -> list[Change]:
    """One change per shared record: its highest version."""
    latest: dict[tuple[str, int], dict] = {}
    for row in rows:
        if row["record_type"] not in BY_OUTBOX_TYPE:
            continue
        key = (row["record_type"], row["record_id"])
        seen = latest.get(key)
        if seen is None or (row["version"], row["id"]) >= (seen["version"], seen["id"]):
            latest[key] = row
    return [
        Change(
            outbox_id=row["id"],
            record_type=BY_OUTBOX_TYPE[row["record_type"]].name,
            record_id=row["record_id"],
            operation=row["operation"],
            version=row["version"],
            payload=row["payload"],
            committed_at=row["created_at"],
        )
        for row in sorted(latest.values(), key=lambda r: r["id"])
    ]


def _desired(
    change: Change, grants: dict[str, dict[str, policy.Grant]]
) -> dict[str, tuple[list[int], dict]]:
    """{audience: (agreement ids, payload)} the change is to be published to: the
    audiences its type is shared with (narrowed to those the payload names), each
    with only the fields its agreements allow."""
    if change.operation == DELETE:
        return {}
    named = change.payload.get(AUDIENCE_KEY)
    desired = {}
    for audience, grant in grants.get(change.record_type, {}).items():
        if named is not None and audience != REGION_AUDIENCE and audience not in named:
            continue
        if audience == REGION_AUDIENCE and not for_region(change):
            continue
        desired[audience] = (
            grant.agreement_ids,
            {k: v for k, v in change.payload.items() if k in grant.fields},
        )
    return desired


def for_region(change: Change) -> bool:
    """Whether the record is the region's now (its type's `region_while`)."""
    condition = RECORD_TYPES[change.record_type].region_while
    return condition is None or change.payload.get(condition[0]) == condition[1]


def payload_hash(payload: dict) -> str:
    """What the exchange log keeps of a payload: both sides can show what crossed
    without the log holding the data itself."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _publish(
    conn: Connection, slug: str, changes: list[Change], *, full: bool, synced_to: int = 0
) -> tuple[int, int]:
    """Bring the copies of `changes` in line; with `full`, also withdraw copies of
    `slug`'s records that `changes` does not mention. Returns how many copies were
    published and withdrawn. Lag is logged for changes after `synced_to` only: a
    reconcile that hands an old record to a new audience is no measure of the sync."""
    if not changes and not full:
        return 0, 0
    region_id = conn.execute(
        select(pm.tenants.c.region_id).where(pm.tenants.c.slug == slug)
    ).scalar_one()
    grants = policy.audiences(conn, slug)
    r = records
    query = select(r.c.record_type, r.c.origin_id, r.c.audience, r.c.version).where(
        r.c.origin == slug
    )
    if not full:
        keys = [(c.record_type, c.record_id) for c in changes]
        query = query.where(tuple_(r.c.record_type, r.c.origin_id).in_(keys))
    existing = {
        (row.record_type, row.origin_id, row.audience): row.version for row in conn.execute(query)
    }

    by_record = {(c.record_type, c.record_id): c for c in changes}
    upserts: list[dict] = []
    wanted: set[tuple[str, int, str]] = set()
    for change in changes:
        for audience, (agreement_ids, payload) in _desired(change, grants).items():
            key = (change.record_type, change.record_id, audience)
            wanted.add(key)
            if existing.get(key, -1) > change.version:
                continue  # a newer version is out already
            upserts.append(
                {
                    "origin": slug,
                    "record_type": change.record_type,
                    "origin_id": change.record_id,
                    "audience": audience,
                    "region_id": region_id,
                    "agreement_ids": agreement_ids,
                    "version": change.version,
                    "payload": payload,
                    "payload_hash": payload_hash(payload),
                    "committed_at": change.committed_at,
                }
            )
    stale = [key for key in existing if key not in wanted]

    published = _upsert(conn, upserts)
    fresh = {(c.record_type, c.record_id) for c in changes if c.outbox_id > synced_to}
    for row in published:
        if (row["record_type"], row["origin_id"]) not in fresh:
            row["lag_ms"] = None
    withdrawn = _withdraw(conn, slug, stale, by_record)
    _log(conn, slug, region_id, published, withdrawn)
    _hand_over(conn, slug, published, upserts)
    return len(published), len(withdrawn)


def _in_statements(rows: list[Any]) -> Iterator[list[Any]]:
    """`rows` in slices of STATEMENT_ROWS, one multi-row statement each."""
    for start in range(0, len(rows), STATEMENT_ROWS):
        yield rows[start : start + STATEMENT_ROWS]


def _upsert(conn: Connection, rows: list[dict]) -> list[dict]:
    """Write the copies that are new or changed; returns those written (a change
    delivered twice writes nothing the second time), each with the time from its
    commit at the origin until now."""
    return [written for part in _in_statements(rows) for written in _upsert_part(conn, part)]


def _upsert_part(conn: Connection, rows: list[dict]) -> list[dict]:
    r = records
    statement = insert(r).values(rows)
    new = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=[r.c.origin, r.c.record_type, r.c.origin_id, r.c.audience],
        set_={
            "version": new.version,
            "payload": new.payload,
            "payload_hash": new.payload_hash,
            "agreement_ids": new.agreement_ids,
            "committed_at": new.committed_at,
            "published_at": func.clock_timestamp(),
        },
        # Never back to an older version; the same version again only when what the
        # agreements allow of it changed.
        where=(r.c.version < new.version)
        | (
            (r.c.version == new.version)
            & ((r.c.payload_hash != new.payload_hash) | (r.c.agreement_ids != new.agreement_ids))
        ),
    ).returning(
        r.c.record_type,
        r.c.origin_id,
        r.c.audience,
        r.c.version,
        r.c.payload_hash,
        r.c.agreement_ids,
        func.round(func.extract("epoch", func.clock_timestamp() - r.c.committed_at) * 1000)
        .cast(Integer)
        .label("lag_ms"),
    )
    return [dict(row) for row in conn.execute(upsert).mappings()]


def _withdraw(
    conn: Connection,
    slug: str,
    keys: list[tuple[str, int, str]],
    by_record: dict[tuple[str, int], Change],
) -> list[dict]:
    r = records
    rows = [
        row
        for part in _in_statements(keys)
        for row in conn.execute(
            r.delete()
            .where(
                r.c.origin == slug, tuple_(r.c.record_type, r.c.origin_id, r.c.audience).in_(part)
            )
            .returning(r.c.record_type, r.c.origin_id, r.c.audience, r.c.version, r.c.agreement_ids)
        ).mappings()
    ]
    withdrawn = []
    for row in rows:
        change = by_record.get((row["record_type"], row["origin_id"]))
        deletion = change if change is not None and change.operation == DELETE else None
        reason = DELETED_AT_ORIGIN if deletion else NOT_COVERED
        if deletion is None and change is not None and row["audience"] == REGION_AUDIENCE:
            reason = LEFT_REGION
        withdrawn.append(
            {
                **row,
                "version": deletion.version if deletion else row["version"],
                "reason": reason,
            }
        )
    return withdrawn


def _log(
    conn: Connection, slug: str, region_id: str, published: list[dict], withdrawn: list[dict]
) -> None:
    """One exchange-log row per copy written or withdrawn, in one statement."""
    entries = [
        {
            "action": PUBLISH,
            "origin": slug,
            "region_id": region_id,
            "reason": None,
            **{k: row[k] for k in ("record_type", "origin_id", "audience", "version")},
            "agreement_ids": row["agreement_ids"],
            "payload_hash": row["payload_hash"],
            "lag_ms": row["lag_ms"],
        }
        for row in published
    ] + [
        {
            "action": WITHDRAW,
            "origin": slug,
            "region_id": region_id,
            "reason": row["reason"],
            **{k: row[k] for k in ("record_type", "origin_id", "audience", "version")},
            "agreement_ids": row["agreement_ids"],
            "payload_hash": None,
            "lag_ms": None,
        }
        for row in withdrawn
    ]
    if entries:
        conn.execute(log.insert(), entries)


def _hand_over(conn: Connection, slug: str, published: list[dict], upserts: list[dict]) -> None:
    """Copies the receiving village acts on (INBOUND) are handed to it now, under its
    own role and in this transaction: the copy and its effect commit together, and
    a copy published again (same version) is not handed over twice."""
    written = {(row["record_type"], row["origin_id"], row["audience"]) for row in published}
    for row in upserts:
        target = INBOUND.get(row["record_type"])
        key = (row["record_type"], row["origin_id"], row["audience"])
        if target is None or key not in written or row["audience"] == REGION_AUDIENCE:
            continue
        with as_village(conn, row["audience"]):
            _inbound(target)(conn, slug, row["origin_id"], row["version"], row["payload"])


def _inbound(target: str) -> Callable[..., None]:
    module, name = target.split(":")
    return getattr(import_module(module), name)
