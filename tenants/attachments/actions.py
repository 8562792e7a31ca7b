"""Writes to attachments and upload tickets: the only place they change.

The flow: `do_create_upload` hands out a presigned PUT for a new key and
remembers what the client declared; the client uploads; `do_attach_file`
checks the record, moves the object out of the upload URL's reach, checks its
real size and type, and records it. Detaching (or deleting a record) marks
rows `removing`; a job removes the objects after the commit
(jobs/storage.py). Every write adds an audit entry to the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, func, select

from villagelink.platform.audit import Actor, record
from villagelink.storage.purposes import EXTENSIONS, MB, PURPOSES
from villagelink.storage.sniff import sniff_object
from villagelink.storage.store import ObjectStore
from villagelink.tenants import clock
from villagelink.tenants import models as m
from villagelink.tenants.attachments.declarations import declaration
from villagelink.tenants.attachments.queries import ACTIVE, REMOVING
from villagelink.tenants.attachments.validation import TOO_LARGE, NewUploadSchema
from villagelink.tenants.user_errors import (
    INVALID,
    INVALID_TRANSITION,
    MISMATCH,
    NOT_FOUND,
    from_validation_error,
    refused,
)

ATTACHMENT = "Attachment"
UPLOAD = "Upload"
# Long enough for a phone on a village's mobile network to send 10 MB.
UPLOAD_URL_LIFETIME = timedelta(minutes=15)
# An upload may be attached this long after its URL expired (it may have
# finished at the last second); after that the sweep removes it.
ATTACH_GRACE = timedelta(hours=1)


def thumbnail_key(object_key: str) -> str:
    return f"{object_key}.thumb.webp"


def do_create_upload(
    conn: Connection, actor: Actor, village: str, store: ObjectStore, data: dict[str, Any]
) -> dict:
    """A presigned PUT for a new object of the village, and the ticket that lets
    `do_attach_file` accept it later."""
    try:
        values = NewUploadSchema().load(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    purpose = PURPOSES[values["purpose"]]
    key = f"incoming/{uuid.uuid4().hex}"
    # Villages provisioned before the object store existed get their bucket here.
    store.ensure_bucket(village)
    ticket = store.presigned_put(
        village, key, values["content_type"], UPLOAD_URL_LIFETIME, purpose.max_bytes
    )
    conn.execute(
        m.uploads.insert().values(
            object_key=key,
            purpose=purpose.name,
            filename=values["filename"],
            content_type=values["content_type"],
            size=values["size"],
            created_by=actor.principal.sub,
            expires_at=ticket.expires_at,
        )
    )
    record(
        conn,
        actor,
        village=village,
        action="upload.create",
        subject_type=UPLOAD,
        subject_id=key,
        details={k: values[k] for k in ("purpose", "filename", "content_type", "size")},
    )
    return {"key": key, "ticket": ticket}


def do_attach_file(
    conn: Connection,
    actor: Actor,
    village: str,
    store: ObjectStore,
    key: str,
    record_type: str,
    record_id: str | None,
) -> dict:
    """Attach the uploaded object `key` to a record; returns the attachment row.
    A `record_id` of None stands for an ID that named no record of this village.

    Refused, with the object removed, when its size is not the declared one (or
    over the purpose's limit) or its bytes are not of the declared type.
    """
    declared = declaration(record_type)
    if declared is None:
        raise refused("recordType", "此类记录不能附加文件", INVALID)
    u = m.uploads
    upload = (
        conn.execute(
            select(u)
            .where(
                u.c.object_key == key,
                u.c.attached_at.is_(None),
                u.c.expires_at > clock.now() - ATTACH_GRACE,
            )
            # Two attaches of one upload: the second waits, then finds it taken.
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if upload is None:
        raise refused("key", "上传凭证不存在、已使用或已过期", NOT_FOUND)
    if upload["purpose"] not in declared.purposes:
        raise refused("key", "此用途的文件不能附加到该类记录", INVALID)
    if record_id is None or not declared.exists(conn, record_id):
        raise refused("recordId", "记录不存在或不在您的管辖范围内", NOT_FOUND)

    purpose = PURPOSES[upload["purpose"]]
    found = store.stat(village, key)
    if found is None:
        raise refused("key", "文件尚未上传", NOT_FOUND)
    _check_size(store, village, key, found.size, upload["size"], purpose.max_bytes)
    # Out of the upload URL's reach: a second PUT with it, after the checks
    # below, cannot swap the bytes of an attached file.
    final_key = f"files/{purpose.name}/{uuid.uuid4().hex}.{EXTENSIONS[upload['content_type']]}"
    if not store.move(village, key, final_key):
        raise refused("key", "文件尚未上传", NOT_FOUND)
    # Again, on the moved object: another PUT may have landed before the move.
    moved = store.stat(village, final_key)
    _check_size(
        store, village, final_key, moved.size if moved else -1, upload["size"], purpose.max_bytes
    )
    if sniff_object(store, village, final_key) != upload["content_type"]:
        store.remove(village, final_key)
        raise refused("key", "文件内容与声明的类型不符，已删除", MISMATCH)

    row = (
        conn.execute(
            m.attachments.insert()
            .values(
                record_type=record_type,
                record_id=record_id,
                purpose=purpose.name,
                object_key=final_key,
                filename=upload["filename"],
                content_type=upload["content_type"],
                size=upload["size"],
                uploaded_by=upload["created_by"],
            )
            .returning(*m.attachments.c)
        )
        .mappings()
        .one()
    )
    conn.execute(u.update().where(u.c.object_key == key).values(attached_at=func.now()))
    record(
        conn,
        actor,
        village=village,
        action="attachment.create",
        subject_type=ATTACHMENT,
        subject_id=row["id"],
        details={
            "record_type": record_type,
            "record_id": record_id,
            "purpose": purpose.name,
            "upload": key,
            "object_key": final_key,
        },
    )
    return dict(row)


def _check_size(
    store: ObjectStore, village: str, key: str, size: int, declared: int, limit: int
) -> None:
    if size > limit:
        store.remove(village, key)
        raise refused("key", f"文件超过 {limit // MB} MB，已删除", TOO_LARGE)
    if size != declared:
        store.remove(village, key)
        raise refused("key", "文件大小与声明的不符，已删除", MISMATCH)


def do_detach_file(conn: Connection, actor: Actor, village: str, attachment_id: int | None) -> dict:
    """Take a file off its record; its objects go in a job after the commit. An
    `attachment_id` of None stands for an ID that named no attachment the caller sees.

    Refused while the record takes no changes to its files (a published notice:
    what residents were shown stays as it was)."""
    t = m.attachments
    found = None
    if attachment_id is not None:
        found = (
            conn.execute(
                select(t.c.record_type, t.c.record_id)
                .where(t.c.id == attachment_id, t.c.status == ACTIVE)
                # Two detaches of one file: the second waits, then finds it gone.
                .with_for_update()
            )
            .mappings()
            .first()
        )
    if found is None:
        raise refused("id", "附件不存在", NOT_FOUND)
    declared = declaration(found["record_type"])
    if declared is None or not declared.exists(conn, found["record_id"]):
        raise refused("id", "此记录现在不能更改附件", INVALID_TRANSITION)
    row = (
        conn.execute(
            t.update().where(t.c.id == attachment_id).values(status=REMOVING).returning(*t.c)
        )
        .mappings()
        .one()
    )
    record(
        conn,
        actor,
        village=village,
        action="attachment.detach",
        subject_type=ATTACHMENT,
        subject_id=attachment_id,
        details={"record_type": row["record_type"], "record_id": row["record_id"]},
    )
    return dict(row)


def do_remove_record_attachments(
    conn: Connection, actor: Actor, village: str, record_type: str, record_id: str
) -> list[int]:
    """For a record's delete action: mark all its files for removal, in the delete's
    transaction; returns their ids for the removal job (enqueued after commit)."""
    t = m.attachments
    ids = list(
        conn.execute(
            t.update()
            .where(t.c.record_type == record_type, t.c.record_id == record_id, t.c.status == ACTIVE)
            .values(status=REMOVING)
            .returning(t.c.id)
        ).scalars()
    )
    if ids:
        record(
            conn,
            actor,
            village=village,
            action="attachment.remove_with_record",
            subject_type=record_type,
            subject_id=record_id,
            details={"attachments": ids},
        )
    return ids
