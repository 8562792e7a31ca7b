"""How the demo writes its rows in bulk: ids back in the order of the rows, list
positions turned into ids, and outbox rows in the shape the actions append them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table

from villagelink.tenants.outbox import UPSERT


def insert_returning_ids(conn: Connection, table: Table, values: list[dict]) -> list[int]:
    """Bulk insert (executemany) and the new ids in the order of `values`."""
    if not values:
        return []
    result = conn.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), values
    )
    return list(result.scalars())


def columns(row: Any, table: Table) -> dict[str, Any]:
    """The fields of `row` that are columns of `table`, as they are."""
    return {c.name: getattr(row, c.name) for c in table.columns if hasattr(row, c.name)}


def optional_id(ids: Sequence[int], position: int | None) -> int | None:
    return None if position is None else ids[position]


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def outbox_row(
    record_type: str, record_id: int, version: int, payload: dict, operation=UPSERT
) -> dict:
    return {
        "record_type": record_type,
        "record_id": record_id,
        "operation": operation,
        "version": version,
        "payload": payload,
    }
