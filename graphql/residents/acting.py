"""A resident acting for their household with the village's own mutations (activity
sign-ups, service orders, their own phone): who the target reaches, and which
residents are theirs to act for. Staff pass through to the village's usual checks."""

from __future__ import annotations

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import GlobalId, target_id
from villagelink.tenants.residents.queries import residents_by_ids
from villagelink.tenants.user_errors import NOT_FOUND, refused

NOT_THEIRS = "居民不存在或不在您的管辖范围内"


def staff_or_resident_target(
    ctx: RequestContext, raw: str, type_name: str
) -> tuple[GlobalId, dict | None]:
    """The ID a mutation acts on and, for a bound resident, their own record (id,
    household); anyone else needs the right to write in the village."""
    acting: dict[str, dict | None] = {}

    def check(village: str) -> None:
        acting["resident"] = ctx.resident_of(village)
        if acting["resident"] is None:
            ctx.require_write(village)

    gid = target_id(raw, type_name, check)
    return gid, acting["resident"]


def require_household_member(
    ctx: RequestContext, village: str, resident: dict | None, resident_id: int | None, field: str
) -> None:
    """A resident acts for the members of their household only; anyone else is not
    found to them, as a resident outside a grid worker's grids is. No-op for staff."""
    if resident is None or resident_id is None or resident_id == resident["id"]:
        return
    member = residents_by_ids(ctx.tenant(village), [resident_id], allowed_grids=None).get(
        resident_id
    )
    if (
        member is None
        or member["household_id"] is None
        or member["household_id"] != resident["household_id"]
    ):
        raise refused(field, NOT_THEIRS, NOT_FOUND)


def require_household_record(
    ctx: RequestContext, village: str, resident: dict | None, record: dict | None, field: str
) -> None:
    """The same for a record of a resident (a sign-up, an order): missing, or not of
    a member of their household (a neighbour's guest included), it is not found."""
    if resident is None:
        return
    if record is None or record.get("resident_id") is None:
        raise refused(field, "记录不存在或不在您的管辖范围内", NOT_FOUND)
    require_household_member(ctx, village, resident, record["resident_id"], field)
