"""Reading attachment rows (active ones: a detached file is gone for readers at once)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from villagelink.tenants import models as m

ACTIVE = "active"
REMOVING = "removing"


def attachments_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    t = m.attachments
    rows = conn.execute(select(t).where(t.c.id.in_(list(ids)), t.c.status == ACTIVE)).mappings()
    return {row["id"]: dict(row) for row in rows}


def attachments_of_records(
    conn: Connection, record_type: str, record_ids: Iterable[str]
) -> dict[str, list[dict]]:
    """Each record's attachments, oldest first, in one statement for a whole page."""
    t = m.attachments
    rows = conn.execute(
        select(t)
        .where(
            t.c.record_type == record_type,
            t.c.record_id.in_(list(record_ids)),
            t.c.status == ACTIVE,
        )
        .order_by(t.c.id)
    ).mappings()
    found: dict[str, list[dict]] = {}
    for row in rows:
        found.setdefault(row["record_id"], []).append(dict(row))
    return found
