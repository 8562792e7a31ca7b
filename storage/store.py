"""The object store: what the platform asks of one, whichever backend serves it.

Every object lives in its village's own space (a private MinIO bucket, or a
directory of the local-disk backend) under a key the platform chose. Clients
never hold credentials: they get short-lived presigned URLs, one object and one
method each, and the village is part of what is signed, so a URL for one
village reaches nothing of another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote

# Keys are made by the platform (see tenants/attachments), never taken from a
# client: segments of letters, digits, '.', '_' and '-', none starting with a
# dot, so a key can neither climb out of a directory nor hide as a dotfile.
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_KEY_SEGMENTS = 8


class InvalidKey(ValueError):
    """A key the store will not use as an object name."""


def validate_key(key: str) -> str:
    segments = key.split("/")
    if len(segments) > MAX_KEY_SEGMENTS or not all(_KEY_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidKey(f"invalid object key {key!r}")
    return key


@dataclass(frozen=True)
class UploadTicket:
    """How a client uploads one object: send `method` to `url` with `headers`, before
    `expires_at`."""

    url: str
    method: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    size: int


class ObjectStore(Protocol):
    def ensure_bucket(self, village: str) -> None:
        """Create the village's private space if it is missing (idempotent)."""

    def presigned_put(
        self, village: str, key: str, content_type: str, expires: timedelta, max_bytes: int
    ) -> UploadTicket:
        """A URL that lets anyone holding it upload this one object until it expires.
        `max_bytes` bounds the body where the backend can enforce it; the size is
        checked again when the object is attached, for backends that cannot."""

    def presigned_get(
        self,
        village: str,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A URL that reads this one object until it expires, answered with
        `content_type` and, if given, `filename` as its download name."""

    def stat(self, village: str, key: str) -> ObjectInfo | None:
        """The object's size, or None when there is no such object."""

    def read_head(self, village: str, key: str, n: int) -> bytes:
        """The first `n` bytes (fewer if the object is shorter)."""

    def read(self, village: str, key: str) -> bytes:
        """The whole object."""

    def put(self, village: str, key: str, data: bytes, content_type: str) -> None:
        """Store an object the platform made itself (thumbnails)."""

    def move(self, village: str, source: str, target: str) -> bool:
        """Give an object a new key, out of reach of the URL that uploaded it; False
        when there is no object at `source`."""

    def remove(self, village: str, key: str) -> None:
        """Remove the object; removing a missing one is not an error."""


def content_disposition(filename: str) -> str:
    """`inline` with the original name, RFC 6266 style: an ASCII fallback and the
    UTF-8 name, since most names here are Chinese."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "file"
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
