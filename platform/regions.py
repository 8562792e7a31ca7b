"""Regions (联动片区) and neighbour links (相邻关系): which villages govern together and
which border which. Platform admins keep them; the five-village linkage reads them.

A link is one row per unordered pair, the smaller slug first (`neighbour_links`), so
"A borders B" and "B borders A" are the same fact and can be stated only once.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform import models as pm
from villagelink.platform.audit import Actor, record
from villagelink.platform.db import SLUG_PATTERN
from villagelink.storage.exports import MAX_REGION_ID
from villagelink.tenants.provisioning import ensure_region_role
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    NOT_FOUND,
    REQUIRED,
    refused,
)

REGION = "Region"
NEIGHBOUR_LINK = "NeighbourLink"


def do_create_region(conn: Connection, actor: Actor, region_id: str, name: str) -> dict:
    """A new region, empty until villages are provisioned into it."""
    # At most MAX_REGION_ID long: the region's storage space is named after it.
    if not SLUG_PATTERN.fullmatch(region_id or "") or len(region_id) > MAX_REGION_ID:
        raise refused("id", "片区编号须为2-32位小写字母、数字或下划线，以字母开头", INVALID)
    name = (name or "").strip()
    if not name:
        raise refused("name", "请填写片区名称", REQUIRED)
    created = conn.execute(
        insert(pm.regions)
        .values(id=region_id, name=name)
        .on_conflict_do_nothing()
        .returning(pm.regions.c.id, pm.regions.c.name)
    ).first()
    if created is None:
        raise refused("id", "该片区编号已存在", DUPLICATE)
    ensure_region_role(conn, region_id)
    record(
        conn,
        actor,
        village=None,
        action="region.create",
        subject_type=REGION,
        subject_id=region_id,
        details={"name": name},
    )
    return dict(created._mapping)


def _pair(conn: Connection, village: str, neighbour: str) -> tuple[str, str]:
    """The two villages as the table keeps them, once both exist and differ."""
    if village == neighbour:
        raise refused("neighbour", "村庄不能与自身相邻", INVALID)
    found = set(
        conn.execute(
            select(pm.tenants.c.slug).where(pm.tenants.c.slug.in_([village, neighbour]))
        ).scalars()
    )
    for field, slug in (("village", village), ("neighbour", neighbour)):
        if slug not in found:
            raise refused(field, f"村庄 {slug} 不存在", NOT_FOUND)
    a, b = sorted((village, neighbour))
    return a, b


def do_link_neighbours(conn: Connection, actor: Actor, village: str, neighbour: str) -> None:
    """Record that two villages border each other; villages of different regions may
    (a region's edge is not a map's)."""
    a, b = _pair(conn, village, neighbour)
    linked = conn.execute(
        insert(pm.neighbour_links)
        .values(village_a=a, village_b=b)
        .on_conflict_do_nothing()
        .returning(pm.neighbour_links.c.village_a)
    ).first()
    if linked is None:
        raise refused("neighbour", "两村已是相邻关系", DUPLICATE)
    record(
        conn,
        actor,
        village=None,
        action="neighbours.link",
        subject_type=NEIGHBOUR_LINK,
        subject_id=f"{a}:{b}",
    )


def do_unlink_neighbours(conn: Connection, actor: Actor, village: str, neighbour: str) -> None:
    a, b = _pair(conn, village, neighbour)
    links = pm.neighbour_links
    removed = conn.execute(
        delete(links).where(links.c.village_a == a, links.c.village_b == b)
    ).rowcount
    if not removed:
        raise refused("neighbour", "两村并非相邻关系", NOT_FOUND)
    record(
        conn,
        actor,
        village=None,
        action="neighbours.unlink",
        subject_type=NEIGHBOUR_LINK,
        subject_id=f"{a}:{b}",
    )
