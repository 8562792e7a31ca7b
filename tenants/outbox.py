"""The village's outbox: every change to a record type that may be shared with
neighbours is appended here in the same transaction as the change itself.

The sync jobs (five-village linkage) read it after their cursor and publish
according to the agreements in force. Redis is only a transport: what must
cross a village boundary can always be rebuilt from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Cast,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

from villagelink.tenants.models import metadata


class Xid8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id (`xid8`), an int in Python. Sent as text
    cast to xid8: the server has no comparison of xid8 with a number."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "XID8"

    def bind_processor(self, _dialect: Any) -> Callable[[Any], Any]:
        return lambda value: None if value is None else str(value)

    def bind_expression(self, bindvalue: Any) -> Cast:
        return Cast(bindvalue, self)

    def result_processor(self, _dialect: Any, _coltype: Any) -> Callable[[Any], Any]:
        return lambda value: None if value is None else int(value)


# Reflection (the migration checks) reads xid8 columns back as this type.
ischema_names["xid8"] = Xid8

UPSERT = "upsert"
DELETE = "delete"

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("record_type", Text, nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("operation", Text, nullable=False),
    # The record's version after the change: receivers keep the highest they saw.
    Column("version", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The writing transaction: ids are taken at insert and commit in any order, so the
    # sync reads in (xid, id) order and never past the oldest transaction still running.
    Column("xid", Xid8(), nullable=False, server_default=func.pg_current_xact_id()),
    CheckConstraint("operation IN ('upsert', 'delete')", name="outbox_operation"),
    Index("outbox_record", "record_type", "record_id"),
    Index("outbox_position", "xid", "id"),
)


def wrote_outbox(conn: Connection) -> bool:
    """Whether this transaction appended to the outbox (the caller, having committed,
    then asks the sync to run: enqueue-after-commit). Asking clears the mark: it lives
    on the pooled connection, which outlives the transaction."""
    return conn.info.pop(_WROTE, False)


_WROTE = "villagelink.outbox.wrote"


def emit(
    conn: Connection,
    record_type: str,
    record_id: int,
    payload: dict[str, Any],
    *,
    version: int,
    operation: str = UPSERT,
) -> None:
    """Append one change. `payload` is the record as neighbours may come to see it
    (JSON-serialisable); which fields actually cross is the agreement's business."""
    conn.info[_WROTE] = True
    conn.execute(
        outbox.insert().values(
            record_type=record_type,
            record_id=record_id,
            operation=operation,
            version=version,
            payload=payload,
        )
    )


def emit_many(
    conn: Connection,
    record_type: str,
    changes: list[tuple[int, dict[str, Any], int]],
    *,
    operation: str = UPSERT,
) -> None:
    """Append several changes of one record type, each `(record id, payload, version)`,
    in one statement: a bulk write (e.g. an ingest batch) costs the same however many
    records it touched."""
    if changes:
        conn.info[_WROTE] = True
        conn.execute(
            outbox.insert(),
            [
                {
                    "record_type": record_type,
                    "record_id": record_id,
                    "operation": operation,
                    "version": version,
                    "payload": payload,
                }
                for record_id, payload, version in changes
            ],
        )


def emit_shared(
    conn: Connection,
    record_type: str,
    before: dict | None,
    after: dict,
    *,
    shared: Callable[[dict], bool],
    payload: Callable[[dict], dict[str, Any]],
) -> None:
    """The outbox row of a change to a record neighbours see only while `shared`
    says so (a published activity open to them, a resource in service): the record
    while shared, its withdrawal when the change ends that, nothing otherwise."""
    if shared(after):
        emit(conn, record_type, after["id"], payload(after), version=after["version"])
    elif before is not None and shared(before):
        emit(conn, record_type, after["id"], {}, version=after["version"], operation=DELETE)
