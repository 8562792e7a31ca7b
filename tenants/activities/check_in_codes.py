"""Check-in by the organiser's code (签到码): on the day, the organiser (the village, or
the leader of the team that runs the activity) shows a six-digit code, and a resident
checking in from their phone types it: being there is what the code proves.

A code is valid on its occurrence's day in the village only, and issuing one again
replaces it. Six digits fall to guessing unless guesses are limited: every account
has `MAX_WRONG_CODES` wrong tries per occurrence, counted in a row that outlives the
request (a refusal writes nothing else), and a new code forgives them.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants import clock
from villagelink.tenants.activities import actions, queries
from villagelink.tenants.activities.tables import (
    activity_check_in_codes,
    activity_check_in_failures,
)
from villagelink.tenants.activities.validation import FORBIDDEN, NOT_OPEN, TOO_MANY_ATTEMPTS
from villagelink.tenants.residents.queries import Grids
from villagelink.tenants.user_errors import INVALID, NOT_FOUND, REQUIRED, refused

CODE_DIGITS = 6
MAX_WRONG_CODES = 5
OCCURRENCE = actions.OCCURRENCE
NOT_ORGANISER = "只有村管理员或活动所属志愿服务队的队长可以出示签到码"


def occurrence_day(occurrence: dict) -> date:
    """The occurrence's day in the village: the one day its code checks in."""
    return clock.local(occurrence["starts_at"]).date()


def codes_by_occurrence(conn: Connection, occurrence_ids: list[int]) -> dict[int, dict]:
    c = activity_check_in_codes
    rows = conn.execute(select(c).where(c.c.occurrence_id.in_(occurrence_ids))).mappings()
    return {row["occurrence_id"]: dict(row) for row in rows}


def do_issue_check_in_code(
    conn: Connection,
    actor: Actor,
    village: str,
    occurrence_id: int,
    *,
    teams: frozenset[int] | None,
) -> dict:
    """A new code for the occurrence, replacing the one shown before (a code seen by
    someone who is not there is void once the organiser issues another). `teams`: the
    teams a resident acting as themselves leads, of which one must run the activity
    (checked under the occurrence's lock); None for the village's managers."""
    c, f = activity_check_in_codes, activity_check_in_failures
    with conn.begin_nested():
        occurrence = actions.read_occurrence(conn, occurrence_id, lock=True)
        if teams is not None and occurrence["team_id"] not in teams:
            raise refused("occurrence", NOT_ORGANISER, FORBIDDEN)
        actions.require_published(occurrence, "occurrence")
        day = occurrence_day(occurrence)
        if day < clock.today():
            raise refused("occurrence", "该场次已过，不能再生成签到码", NOT_OPEN)
        values = {
            "code": f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}",
            "valid_on": day,
            "issued_by": actor.principal.sub,
        }
        issued = (
            conn.execute(
                insert(c)
                .values(occurrence_id=occurrence_id, **values)
                .on_conflict_do_update(
                    index_elements=["occurrence_id"],
                    set_={**values, "issued_at": clock.now()},
                )
                .returning(*c.columns)
            )
            .mappings()
            .one()
        )
        conn.execute(delete(f).where(f.c.occurrence_id == occurrence_id))
        # The code itself stays out of the audit log: it is a credential for the day.
        record(
            conn,
            actor,
            village=village,
            action="activity.check_in_code",
            subject_type=OCCURRENCE,
            subject_id=occurrence_id,
            details={"valid_on": day.isoformat()},
        )
    return dict(issued)


def _take_a_try(conn: Connection, occurrence_id: int, principal: str) -> int | None:
    """Count one try of `principal` before the code is looked at; None once the tries are
    used up. The row stays locked until the transaction ends, so tries sent at once are
    counted one after the other and never compare more codes than allowed."""
    f = activity_check_in_failures
    statement = insert(f).values(occurrence_id=occurrence_id, principal=principal, failures=1)
    return conn.execute(
        statement.on_conflict_do_update(
            index_elements=["occurrence_id", "principal"],
            set_={"failures": f.c.failures + 1, "last_failed_at": clock.now()},
            where=f.c.failures < MAX_WRONG_CODES,
        ).returning(f.c.failures)
    ).scalar()


def _give_the_try_back(conn: Connection, occurrence_id: int, principal: str) -> None:
    """The code was right: the try does not count (and leaves no row behind)."""
    f = activity_check_in_failures
    mine = (f.c.occurrence_id == occurrence_id, f.c.principal == principal)
    conn.execute(update(f).where(*mine).values(failures=f.c.failures - 1))
    conn.execute(delete(f).where(*mine, f.c.failures == 0))


def _too_many():
    return refused("code", "签到码输错次数过多，请组织者重新生成签到码后再试", TOO_MANY_ATTEMPTS)


def do_check_in_by_code(
    conn: Connection,
    actor: Actor,
    village: str,
    sign_up_id: int,
    code: str | None,
    *,
    allowed_grids: Grids,
) -> dict:
    """A resident's own check-in: `code` must be the one the organiser shows today.
    A wrong code counts against the caller's tries and changes nothing else."""
    code = (code or "").strip()
    if not code:
        raise refused("code", "请输入组织者出示的签到码", REQUIRED)
    found = queries.sign_ups_by_ids(conn, [sign_up_id], allowed_grids=allowed_grids).get(sign_up_id)
    if found is None:
        raise refused("signUp", "报名记录不存在或不在您的管辖范围内", NOT_FOUND)
    occurrence_id, principal = found["occurrence_id"], actor.principal.sub
    # Counted outside any savepoint: the refusals below must not roll it back.
    tries = _take_a_try(conn, occurrence_id, principal)
    if tries is None:
        raise _too_many()
    issued = codes_by_occurrence(conn, [occurrence_id]).get(occurrence_id)
    if issued is None or not hmac.compare_digest(issued["code"], code):
        if tries >= MAX_WRONG_CODES:
            raise _too_many()
        raise refused("code", f"签到码不正确，还可再试{MAX_WRONG_CODES - tries}次", INVALID)
    _give_the_try_back(conn, occurrence_id, principal)
    # Expired once its day is over. Before the day, check-in's own window decides: a session
    # starting at 00:10 opens for check-in at 23:10 the evening before.
    if clock.today() > issued["valid_on"]:
        raise refused("code", "签到码已过期，请向组织者获取当天的签到码", NOT_OPEN)
    return actions.do_check_in(conn, actor, village, sign_up_id, {}, allowed_grids=allowed_grids)
