"""Demo shared resources of one village: a micro fire station, AEDs, a venue and a
vehicle, all shared with neighbours, and a couple of the village's own bookings.

Written through the actions (outbox rows and audit entries included), so the demo
region's sync publishes them like any admin's work. Seeding twice adds nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Connection, exists, select

from villagelink.tenants import clock
from villagelink.tenants.demo.village import DEMO_ACTOR
from villagelink.tenants.resources import actions
from villagelink.tenants.resources.tables import shared_resources


def _resources(village_name: str) -> list[dict]:
    return [
        {
            "kind": "micro_fire_station",
            "name": f"{village_name}微型消防站",
            "description": "灭火器20具、消防水带4盘、机动泵1台，24小时值守",
            "location_text": "村委会东侧",
            "contact_name": "王建国",
            "contact_phone": "13803110001",
            "bookable": False,
        },
        {
            "kind": "aed",
            "name": f"{village_name}村委会AED",
            "description": "自动体外除颤器，挂于村委会大门内侧",
            "location_text": "村委会大门内侧",
            "contact_name": "李秀兰",
            "contact_phone": "13803110002",
            "bookable": False,
        },
        {
            "kind": "aed",
            "name": f"{village_name}卫生室AED",
            "description": "自动体外除颤器，可借出用于大型活动保障",
            "location_text": "村卫生室",
            "contact_name": "赵春梅",
            "contact_phone": "13803110003",
        },
        {
            "kind": "venue",
            "name": f"{village_name}文化礼堂",
            "description": "可容纳200人，配音响与投影",
            "location_text": "村文化广场北侧",
            "contact_name": "李秀兰",
            "contact_phone": "13803110002",
        },
        {
            "kind": "vehicle",
            "name": f"{village_name}应急保障车",
            "description": "7座商务车，用于应急转运与老人就医接送",
            "location_text": "村委会停车场",
            "contact_name": "王建国",
            "contact_phone": "13803110001",
        },
    ]


def _at(days_ahead: int, hour: int) -> str:
    day = clock.today() + timedelta(days=days_ahead)
    return datetime.combine(day, time(hour), clock.VILLAGE_TIME_ZONE).isoformat()


def seed_demo_resources(conn: Connection, slug: str, village_name: str = "") -> int:
    """Seed the village's resources (in its own transaction, under its role); returns
    how many were created (0 when the village has resources already)."""
    if conn.execute(select(exists().select_from(shared_resources))).scalar():
        return 0
    created = {}
    for data in _resources(village_name):
        resource = actions.do_create_resource(conn, DEMO_ACTOR, slug, {**data, "shared": True})
        created[data["kind"], data.get("bookable", True)] = resource["id"]
    venue, vehicle = created["venue", True], created["vehicle", True]
    approved = actions.do_book_resource(
        conn,
        DEMO_ACTOR,
        slug,
        venue,
        slug,
        {
            "from": _at(7, 9),
            "to": _at(7, 12),
            "purpose": "重阳节敬老文艺汇演",
            "contact_name": "李秀兰",
            "contact_phone": "13803110002",
        },
    )
    actions.do_approve_booking(conn, DEMO_ACTOR, slug, approved["id"])
    actions.do_book_resource(
        conn,
        DEMO_ACTOR,
        slug,
        vehicle,
        slug,
        {
            "from": _at(3, 8),
            "to": _at(3, 11),
            "purpose": "接送独居老人到镇卫生院体检",
            "contact_name": "王建国",
            "contact_phone": "13803110001",
        },
    )
    return len(created)
