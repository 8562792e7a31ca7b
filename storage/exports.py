"""Exports: an .xlsx made on request, kept in the store only as long as its download
link works. One way for every export (a village's residents, a region's figures): the
caller writes a row naming the object and its expiry in the same transaction as the
object is put (a failed put leaves no row), hands out a presigned link, and a
background job removes the expired objects and rows afterwards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Table, func, select

from villagelink.storage.purposes import XLSX
from villagelink.storage.store import ObjectStore

EXPORT_URL_LIFETIME = timedelta(minutes=10)
# A region keeps its exports in a space of its own beside the villages': village slugs
# may not begin with this (platform/villages.py), and region ids are short enough for
# the whole name to be a valid space name (platform/regions.py).
REGION_SPACE_PREFIX = "region_"
MAX_REGION_ID = 32


def region_space(region_id: str) -> str:
    return f"{REGION_SPACE_PREFIX}{region_id}"


@dataclass(frozen=True)
class Export:
    key: str
    filename: str
    rows: int
    expires_at: datetime


def new_export(filename: str, rows: int, now: datetime) -> Export:
    """A fresh object key and the moment its link stops working."""
    return Export(f"exports/{uuid.uuid4().hex}.xlsx", filename, rows, now + EXPORT_URL_LIFETIME)


def put_export(store: ObjectStore, space: str, export: Export, data: bytes) -> None:
    """The file into `space` (a village's, or a region's: see `region_space`)."""
    store.ensure_bucket(space)
    store.put(space, export.key, data, XLSX)


def download(store: ObjectStore, space: str, export: Export) -> dict:
    """The API's FileDownload: a link that lasts as long as the export is kept."""
    url = store.presigned_get(
        space, export.key, EXPORT_URL_LIFETIME, content_type=XLSX, filename=export.filename
    )
    return {"url": url, "filename": export.filename, "expires_at": export.expires_at}


def remove_expired(
    conn: Connection, store: ObjectStore, space: str, table: Table, *where: ColumnElement[bool]
) -> int:
    """Remove the exports of `table` (id, object_key, expires_at) whose link has
    expired, objects first; returns how many. Housekeeping of files already audited."""
    expired = conn.execute(
        select(table.c.id, table.c.object_key).where(table.c.expires_at < func.now(), *where)
    ).all()
    for row in expired:
        store.remove(space, row.object_key)
    if expired:
        conn.execute(table.delete().where(table.c.id.in_([row.id for row in expired])))
    return len(expired)
