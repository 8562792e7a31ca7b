"""Writes to notices (村务公开): the only place they change.

A notice moves draft → published → withdrawn, and a withdrawn one may go back
to draft to be corrected and published again; any other step is refused with
INVALID_TRANSITION and changes nothing. Only a draft may be edited (what
residents were shown is not changed under them), and only a draft that was never
published may be deleted (a published notice is withdrawn, not erased).

Published notices are shared with neighbours: publishing appends the notice to
the outbox, withdrawing takes it back. Every write adds an audit entry to the
same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants import clock
from villagelink.tenants.attachments.actions import do_remove_record_attachments
from villagelink.tenants.notices.queries import EVERY_NOTICE, NOTICE, notices_by_ids, visible
from villagelink.tenants.notices.tables import (
    DRAFT,
    PUBLISHED,
    WITHDRAWN,
    notice_reads,
    notices,
)
from villagelink.tenants.notices.validation import NoticeSchema, ReadSchema, WithdrawalSchema
from villagelink.tenants.outbox import DELETE, emit
from villagelink.tenants.user_errors import (
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    UserError,
    refused,
    validated,
)

STATE_NAMES = {DRAFT: "草稿", PUBLISHED: "已发布", WITHDRAWN: "已撤回"}
# step -> (the state it starts from, the state it leads to, what the step is called)
TRANSITIONS = {
    "publish": (DRAFT, PUBLISHED, "发布"),
    "withdraw": (PUBLISHED, WITHDRAWN, "撤回"),
    "return_to_draft": (WITHDRAWN, DRAFT, "退回草稿"),
}


def _locked(conn: Connection, notice_id: int) -> dict:
    row = (
        conn.execute(select(notices).where(notices.c.id == notice_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise refused("id", "通知不存在", NOT_FOUND)
    return dict(row)


def _stepping(conn: Connection, notice_id: int, step: str) -> dict:
    """The notice, locked, if `step` may start from its state."""
    notice = _locked(conn, notice_id)
    start, _, name = TRANSITIONS[step]
    if notice["state"] != start:
        raise refused("id", f"通知{STATE_NAMES[notice['state']]}，不能{name}", INVALID_TRANSITION)
    return notice


def _save(conn: Connection, notice_id: int, **values: Any) -> None:
    """Change a notice and bump its version (what receivers of the outbox compare)."""
    n = notices
    conn.execute(
        n.update()
        .where(n.c.id == notice_id)
        .values(**values, version=n.c.version + 1, updated_at=func.now())
    )


def _fresh(conn: Connection, notice_id: int) -> dict:
    return notices_by_ids(conn, [notice_id], EVERY_NOTICE, now=clock.now())[notice_id]


def _check_window(publish_from: datetime | None, publish_until: datetime | None) -> None:
    if publish_from is not None and publish_until is not None and publish_until <= publish_from:
        raise refused("publishUntil", "公示截止时间须晚于公示开始时间", INVALID)


def _audit(conn: Connection, actor: Actor, village: str, action: str, notice_id: int, **what):
    record(
        conn,
        actor,
        village=village,
        action=f"notice.{action}",
        subject_type=NOTICE,
        subject_id=notice_id,
        **what,
    )


def _payload(notice: dict) -> dict[str, Any]:
    """A published notice as neighbours may come to see it."""

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": notice["id"],
        "category": notice["category"],
        "title": notice["title"],
        "body": notice["body"],
        "publish_from": moment(notice["publish_from"]),
        "publish_until": moment(notice["publish_until"]),
        "published_at": moment(notice["published_at"]),
    }


def do_create_notice(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    """A new notice, as a draft."""
    values = validated(NoticeSchema(), data)
    _check_window(values.get("publish_from"), values.get("publish_until"))
    with conn.begin_nested():
        notice_id = conn.execute(
            notices.insert().values(**values).returning(notices.c.id)
        ).scalar_one()
        _audit(conn, actor, village, "create", notice_id, fields=sorted(values))
    return _fresh(conn, notice_id)


def do_update_notice(
    conn: Connection, actor: Actor, village: str, notice_id: int, changes: dict
) -> dict:
    """Change a draft: category, title, body, publish window (null clears an end)."""
    values = validated(NoticeSchema(partial=True), changes)
    with conn.begin_nested():
        notice = _locked(conn, notice_id)
        if notice["state"] != DRAFT:
            raise refused(
                "id",
                f"通知{STATE_NAMES[notice['state']]}，不能修改；请先撤回并退回草稿",
                INVALID_TRANSITION,
            )
        _check_window(
            values.get("publish_from", notice["publish_from"]),
            values.get("publish_until", notice["publish_until"]),
        )
        changed = {k: v for k, v in values.items() if notice[k] != v}
        if changed:
            _save(conn, notice_id, **changed)
            _audit(conn, actor, village, "update", notice_id, fields=sorted(changed))
    return _fresh(conn, notice_id)


def _ready_to_publish(notice: dict, now: datetime) -> None:
    errors = [
        UserError(field, f"发布前请填写{label}", REQUIRED)
        for field, label in (("title", "标题"), ("body", "正文"))
        if not notice[field].strip()
    ]
    if notice["publish_until"] is not None and notice["publish_until"] <= now:
        errors.append(
            UserError("publishUntil", "公示截止时间已过，发布后居民也看不到此通知", INVALID)
        )
    if errors:
        raise ActionFailed(errors)


def do_publish_notice(conn: Connection, actor: Actor, village: str, notice_id: int) -> dict:
    """Publish a draft: residents see it from now, or from the start of its window."""
    with conn.begin_nested():
        notice = _stepping(conn, notice_id, "publish")
        _ready_to_publish(notice, clock.now())
        _save(
            conn,
            notice_id,
            state=PUBLISHED,
            published_at=func.now(),
            withdrawn_at=None,
            withdrawal_reason=None,
        )
        _audit(conn, actor, village, "publish", notice_id)
        published = _fresh(conn, notice_id)
        emit(conn, NOTICE, notice_id, _payload(published), version=published["version"])
    return published


def do_withdraw_notice(
    conn: Connection, actor: Actor, village: str, notice_id: int, data: dict
) -> dict:
    """Take a published notice down, saying why; neighbours' copies go too."""
    reason = validated(WithdrawalSchema(), data)["reason"]
    with conn.begin_nested():
        _stepping(conn, notice_id, "withdraw")
        _save(conn, notice_id, state=WITHDRAWN, withdrawn_at=func.now(), withdrawal_reason=reason)
        _audit(conn, actor, village, "withdraw", notice_id, reason=reason)
        withdrawn = _fresh(conn, notice_id)
        emit(conn, NOTICE, notice_id, {}, version=withdrawn["version"], operation=DELETE)
    return withdrawn


def do_return_notice_to_draft(conn: Connection, actor: Actor, village: str, notice_id: int) -> dict:
    """A withdrawn notice back to draft, to be corrected and published again. It keeps
    when it was last published and why it was withdrawn until it is published again."""
    with conn.begin_nested():
        _stepping(conn, notice_id, "return_to_draft")
        _save(conn, notice_id, state=DRAFT)
        _audit(conn, actor, village, "return_to_draft", notice_id)
    return _fresh(conn, notice_id)


def do_delete_notice(conn: Connection, actor: Actor, village: str, notice_id: int) -> list[int]:
    """Delete a draft that was never published; returns the ids of its attachments,
    marked for removal (their objects go in a job after the commit)."""
    with conn.begin_nested():
        notice = _locked(conn, notice_id)
        if notice["state"] != DRAFT or notice["published_at"] is not None:
            raise refused("id", "只能删除从未发布过的草稿；已发布的通知请撤回", INVALID_TRANSITION)
        removed = do_remove_record_attachments(conn, actor, village, NOTICE, str(notice_id))
        conn.execute(notices.delete().where(notices.c.id == notice_id))
        _audit(conn, actor, village, "delete", notice_id, details={"title": notice["title"]})
    return removed


def _reader_hash(salt: bytes, client: str, reader: str) -> bytes:
    """Who read, as stored: keyed by the notice's own salt, so one resident's hashes
    cannot be matched across notices, and with the app's client id, since each app
    names its users in its own way."""
    return hmac.new(salt, f"{client}\n{reader}".encode(), hashlib.sha256).digest()


def do_mark_notice_read(
    conn: Connection, actor: Actor, village: str, notice_id: int, data: dict
) -> dict:
    """Count a resident's read of a notice they can see now. Idempotent per reader:
    a second read by the same reader adds to the reads, not to the readers."""
    reader = validated(ReadSchema(), data)["reader"]
    n = notices
    salt = conn.execute(
        select(n.c.reader_salt).where(n.c.id == notice_id, visible(clock.now()))
    ).scalar_one_or_none()
    if salt is None:
        raise refused("notice", "通知不存在或不在公示期内", NOT_FOUND)
    principal = actor.principal
    digest = _reader_hash(salt, principal.client_id or principal.sub, reader)
    r = notice_reads
    statement = insert(r).values(notice_id=notice_id, reader_hash=digest)
    with conn.begin_nested():
        reads = conn.execute(
            statement.on_conflict_do_update(
                index_elements=[r.c.notice_id, r.c.reader_hash],
                set_={"reads": r.c.reads + 1, "last_read_at": func.now()},
            ).returning(r.c.reads)
        ).scalar_one()
        _audit(conn, actor, village, "mark_read", notice_id, details={"new_reader": reads == 1})
    return _fresh(conn, notice_id)
