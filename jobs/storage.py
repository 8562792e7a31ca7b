"""Object-store work on the `ingest` queue: thumbnails, removals, the upload sweep.

The web process enqueues these after its transaction has committed
(RequestContext.after_commit), so the rows they read are there. Each job is
idempotent and reads what to do from the village's tables, not from its
arguments alone: a rerun, or a removal whose job was lost and is found again by
the sweep, does no harm.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageOps, UnidentifiedImageError
from rq import Retry
from sqlalchemy import select

from villagelink.jobs.maintenance import for_each_village
from villagelink.jobs.queues import INGEST, enqueue
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform.settings import Settings
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import IMAGE_TYPES, WEBP
from villagelink.tenants import clock
from villagelink.tenants import models as m
from villagelink.tenants.attachments.actions import ATTACH_GRACE, thumbnail_key
from villagelink.tenants.attachments.queries import ACTIVE, REMOVING

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 320
# The store may be briefly away; a job that still fails is kept for a week.
STORAGE_RETRY = Retry(max=3, interval=[10, 60, 300])
FAILURE_TTL = 7 * 24 * 3600


def enqueue_thumbnail(settings: Settings, village: str, attachment_id: int) -> None:
    enqueue(
        settings,
        INGEST,
        make_thumbnail,
        (village, attachment_id),
        retry=STORAGE_RETRY,
        failure_ttl=FAILURE_TTL,
        description=f"thumbnail: {village} attachment {attachment_id}",
    )


def enqueue_removal(settings: Settings, village: str, attachment_ids: list[int]) -> None:
    enqueue(
        settings,
        INGEST,
        remove_attachment_objects,
        (village, attachment_ids),
        retry=STORAGE_RETRY,
        failure_ttl=FAILURE_TTL,
        description=f"remove objects: {village} attachments {attachment_ids}",
    )


def make_thumbnail(village: str, attachment_id: int) -> str | None:
    """A WebP of at most 320×320 beside an attached image; returns its key, or None
    for what gets none (not an image, detached, not decodable)."""
    a = m.attachments
    with job_database().tenant(village) as conn:
        row = conn.execute(
            select(a.c.object_key, a.c.content_type, a.c.thumbnail_key).where(
                a.c.id == attachment_id, a.c.status == ACTIVE
            )
        ).first()
    if row is None or row.content_type not in IMAGE_TYPES:
        return None
    if row.thumbnail_key:
        return row.thumbnail_key
    store = object_store(job_settings())
    original = store.read(village, row.object_key)
    try:
        data = _thumbnail(original)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        # Right magic bytes, bytes Pillow cannot decode: no retry will change that.
        log.warning("%s attachment %s: image not decodable, no thumbnail", village, attachment_id)
        return None
    key = thumbnail_key(row.object_key)
    store.put(village, key, data, WEBP)
    with job_database().tenant(village) as conn:
        recorded = conn.execute(
            a.update()
            .where(a.c.id == attachment_id, a.c.status == ACTIVE)
            .values(thumbnail_key=key)
            .returning(a.c.id)
        ).first()
    if recorded is None:
        # Detached while we worked, and its removal may have run already.
        store.remove(village, key)
        return None
    return key


def _thumbnail(image_bytes: bytes) -> bytes:
    with Image.open(io.BytesIO(image_bytes)) as image:
        # A JPEG can decode straight at a fraction of its size: less memory, less time.
        image.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        # Phone photos are stored sideways with an EXIF note saying which way is up.
        oriented = ImageOps.exif_transpose(image)
        oriented.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        if oriented.mode not in ("RGB", "RGBA"):
            has_alpha = "A" in oriented.getbands() or "transparency" in oriented.info
            oriented = oriented.convert("RGBA" if has_alpha else "RGB")
        out = io.BytesIO()
        oriented.save(out, "WEBP", quality=80)
    return out.getvalue()


def remove_attachment_objects(village: str, attachment_ids: list[int]) -> list[int]:
    """Remove the objects of detached attachments, then their rows; returns the ids
    removed. Rows not (or no longer) marked `removing` are left alone."""
    a = m.attachments
    with job_database().tenant(village) as conn:
        rows = conn.execute(
            select(a.c.id, a.c.object_key).where(a.c.id.in_(attachment_ids), a.c.status == REMOVING)
        ).all()
    store = object_store(job_settings())
    for row in rows:
        store.remove(village, row.object_key)
        # By its derived key: a thumbnail job may have written it without recording it.
        store.remove(village, thumbnail_key(row.object_key))
    removed = [row.id for row in rows]
    if removed:
        with job_database().tenant(village) as conn:
            conn.execute(a.delete().where(a.c.id.in_(removed), a.c.status == REMOVING))
    return removed


def sweep_objects() -> list[str]:
    """The periodic fan-out of `sweep_village_objects` over every active village."""
    return for_each_village(
        sweep_village_objects, retry=STORAGE_RETRY, timeout=300, label="sweep objects"
    )


def sweep_village_objects(village: str) -> dict[str, int]:
    """Catch up on what no job did: objects of rows still `removing` (a job lost
    with Redis), and uploads past their attach window with their objects (never
    attached, or sent again through their URL after the attach)."""
    a, u = m.attachments, m.uploads
    with job_database().tenant(village) as conn:
        removing = list(conn.execute(select(a.c.id).where(a.c.status == REMOVING)).scalars())
        stale = list(
            conn.execute(
                select(u.c.object_key).where(u.c.expires_at < clock.now() - ATTACH_GRACE)
            ).scalars()
        )
    removed = remove_attachment_objects(village, removing) if removing else []
    store = object_store(job_settings())
    for key in stale:
        store.remove(village, key)
    if stale:
        with job_database().tenant(village) as conn:
            conn.execute(u.delete().where(u.c.object_key.in_(stale)))
    return {"attachments": len(removed), "uploads": len(stale)}
