"""What an uploaded object really is, from its bytes rather than from what the client said.

A client names the type when it asks for an upload URL, but the bytes it sends
are its own choice; these checks catch the mismatch before the object is
attached to anything (and later served from a presigned URL).
"""

from __future__ import annotations

import io
import zipfile

from villagelink.storage.purposes import JPEG, PDF, PNG, WEBP, XLSX
from villagelink.storage.store import ObjectStore

# Enough of the head for every signature below.
HEAD_BYTES = 16


def sniff_head(head: bytes) -> str | None:
    """The type the first bytes announce, or None. A ZIP head only says "maybe
    XLSX": `is_xlsx` has to look inside the whole archive."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return XLSX
    return None


def is_xlsx(data: bytes) -> bool:
    """A ZIP holding a spreadsheet: `[Content_Types].xml` and an `xl/` part. Other
    Office files (docx, pptx) and plain archives share the ZIP head but not these."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def sniff_object(store: ObjectStore, village: str, key: str) -> str | None:
    """The stored object's real type: its head for most, the whole archive for XLSX."""
    found = sniff_head(store.read_head(village, key, HEAD_BYTES))
    if found == XLSX and not is_xlsx(store.read(village, key)):
        return None
    return found
