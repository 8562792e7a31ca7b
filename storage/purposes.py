"""What an upload is for decides which types and sizes it may have (docs/storage.md)."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

IMAGE_TYPES = frozenset({JPEG, PNG, WEBP})

# The file name extension each type is stored under.
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf", XLSX: "xlsx"}


@dataclass(frozen=True)
class Purpose:
    name: str
    content_types: frozenset[str]
    max_bytes: int


PURPOSES = {
    p.name: p
    for p in (
        Purpose("request_photo", IMAGE_TYPES, 10 * MB),
        Purpose("notice_attachment", frozenset({PDF}), 20 * MB),
        Purpose("import_sheet", frozenset({XLSX}), 20 * MB),
    )
}
