"""Reading notices inside one village schema.

Who sees what is a `NoticeScope`: the village's staff see every notice,
coordinators the published ones, residents' apps only those residents see
now. Whether residents see a notice is worked out at read time from `now`
and its publish window (`visible`), so no job has to open or close a window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select

from villagelink.tenants.notices.tables import DRAFT, PUBLISHED, notice_reads, notices
from villagelink.tenants.querying import limit_of

NOTICE = "Notice"
NOTICE_ATTACHMENT = "notice_attachment"


@dataclass(frozen=True)
class NoticeScope:
    published_only: bool = False
    # Only what residents see at this moment (implies published).
    visible_at: datetime | None = None


EVERY_NOTICE = NoticeScope()


@dataclass(frozen=True)
class NoticeFilter:
    category: str | None = None
    state: str | None = None


def visible(now: datetime) -> ColumnElement[bool]:
    """Residents see a notice when it is published and `now` is inside its window."""
    n = notices
    return and_(
        n.c.state == PUBLISHED,
        or_(n.c.publish_from.is_(None), n.c.publish_from <= now),
        or_(n.c.publish_until.is_(None), n.c.publish_until > now),
    )


def _notices(scope: NoticeScope, now: datetime) -> Select:
    """Notices as readers get them: with `visible`, without the salt of their readers' hashes."""
    n = notices
    columns = [c for c in n.c if c.name != "reader_salt"]
    query = select(*columns, visible(now).label("visible"))
    if scope.published_only:
        query = query.where(n.c.state == PUBLISHED)
    if scope.visible_at is not None:
        query = query.where(visible(scope.visible_at))
    return query


def _filtered(query: Select, flt: NoticeFilter) -> Select:
    if flt.category:
        query = query.where(notices.c.category == flt.category)
    if flt.state:
        query = query.where(notices.c.state == flt.state)
    return query


def notice_page(
    conn: Connection,
    flt: NoticeFilter,
    scope: NoticeScope,
    *,
    now: datetime,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Newest first: the cursor's id is the last one shown, the page goes on below it."""
    n = notices
    query = _filtered(_notices(scope, now), flt).order_by(n.c.id.desc()).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(n.c.id < after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def notice_count(conn: Connection, flt: NoticeFilter, scope: NoticeScope, *, now: datetime) -> int:
    query = _filtered(_notices(scope, now), flt).subquery()
    return conn.execute(select(func.count()).select_from(query)).scalar_one()


def notices_by_ids(
    conn: Connection, ids: Iterable[int], scope: NoticeScope, *, now: datetime
) -> dict[int, dict]:
    query = _notices(scope, now).where(notices.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def read_counts(conn: Connection, notice_ids: Iterable[int]) -> dict[int, dict]:
    """Distinct readers and all reads of each notice, in one statement for a page."""
    r = notice_reads
    rows = conn.execute(
        select(
            r.c.notice_id,
            func.count().label("readers"),
            func.sum(r.c.reads).label("reads"),
        )
        .where(r.c.notice_id.in_(list(notice_ids)))
        .group_by(r.c.notice_id)
    ).mappings()
    return {row["notice_id"]: {"readers": row["readers"], "reads": row["reads"]} for row in rows}


def takes_attachments(conn: Connection, key: str) -> bool:
    """Whether files may be attached to the notice `key`: it exists and is a draft
    (a published notice is what residents were shown; it changes only as a draft)."""
    if not key.isdigit():
        return False
    n = notices
    found = conn.execute(select(n.c.id).where(n.c.id == int(key), n.c.state == DRAFT))
    return found.first() is not None
