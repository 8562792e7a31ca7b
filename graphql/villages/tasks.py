"""`me { tasks }`: the caller's to-do list (待办) across their villages and regions.

Staff (village admins, grid workers) get what waits in each of their villages, one
statement per village; village admins also the agreements waiting for their answer,
one statement on the platform schema; coordinators what waits for their region, one
statement per region on the exchange schema (its shared copies: alerts and requests
risen to the region, joint cases). The cost grows with the caller's villages and
regions, never with the tasks or with a region's villages.
"""

from __future__ import annotations

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.pagination import page_args
from villagelink.graphql.villages.types import me_type, village_node
from villagelink.platform.identity.principal import GRID_WORKER, REGIONAL_COORDINATOR, VILLAGE_ADMIN
from villagelink.platform.linkage.tasks import agreements_awaiting, region_tasks
from villagelink.tenants.tasks import (
    AGREEMENT,
    ALERT,
    JOINT_CASE_TASK,
    REQUEST,
    SERVICE_ORDER,
    TASK_KINDS,
    TaskItem,
    TaskList,
    village_tasks,
)

# The API type each kind's target is, for its global ID.
TARGET_TYPES = {
    ALERT: "Alert",
    REQUEST: "Request",
    SERVICE_ORDER: "ServiceOrder",
    AGREEMENT: "Agreement",
    JOINT_CASE_TASK: "JointCase",
}

tasks_type = ObjectType("Tasks")
task_type = ObjectType("Task")


@me_type.field("tasks")
def resolve_tasks(_me: dict, info) -> TaskList:
    ctx: RequestContext = info.context
    p = ctx.principal
    limit = ctx.settings.max_page_size
    found = TaskList({}, [])
    admin = p.has(VILLAGE_ADMIN)
    staff = admin or p.has(GRID_WORKER)
    staff_villages = sorted(p.villages & ctx.access.writable) if staff else []
    for slug in staff_villages:
        found.merge(
            village_tasks(
                ctx.tenant(slug),
                slug,
                p.sub,
                village_admin=admin,
                limit=limit,
            )
        )
    if admin and staff_villages:
        with ctx.runtime.db.platform() as conn:
            found.merge(agreements_awaiting(conn, staff_villages, limit))
    if p.has(REGIONAL_COORDINATOR):
        # Regions of active villages only: a token may name one that holds none.
        regions = {v["region_id"] for v in ctx.villages.values()} & p.regions
        for region_id in sorted(regions):
            found.merge(region_tasks(ctx.region(region_id), region_id, limit))
    return found


@tasks_type.field("total")
def resolve_total(tasks: TaskList, _info) -> int:
    return sum(tasks.counts.values())


@tasks_type.field("counts")
def resolve_counts(tasks: TaskList, _info) -> list[dict]:
    return [{"kind": kind, "count": tasks.counts.get(kind, 0)} for kind in TASK_KINDS]


@tasks_type.field("items")
def resolve_items(tasks: TaskList, info, first: int | None = None) -> list[TaskItem]:
    limit = page_args(first, None, info.context.settings.max_page_size).first
    return tasks.most_pressing(limit)


@task_type.field("targetId")
def resolve_target_id(item: TaskItem, _info) -> str:
    return encode_id(TARGET_TYPES[item.kind], item.village, item.key)


@task_type.field("dueAt")
def resolve_due_at(item: TaskItem, _info):
    return item.due_at


@task_type.field("villageSlug")
def resolve_village_slug(item: TaskItem, _info) -> str:
    return item.village


@task_type.field("village")
def resolve_village(item: TaskItem, info) -> dict | None:
    found = info.context.villages.get(item.village)
    return village_node(found) if found else None


bindables = [tasks_type, task_type]
