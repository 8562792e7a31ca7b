"""Which record types take attachments, for which purposes.

A record type (a service request, a notice, an activity, a health record, an
import) declares itself once, next to its own code; attaching then works for it
without any change here. A type that has not declared attachments takes none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from villagelink.storage.purposes import PURPOSES

# Whether the record `record_id` exists in the village of the connection.
RecordExists = Callable[[Connection, str], bool]


@dataclass(frozen=True)
class AttachmentDeclaration:
    record_type: str
    purposes: frozenset[str]
    exists: RecordExists


_declared: dict[str, AttachmentDeclaration] = {}


def declare_attachments(
    record_type: str, purposes: Iterable[str], exists: RecordExists
) -> AttachmentDeclaration:
    """Let records of `record_type` (the GraphQL type name) take files of `purposes`.
    `exists(conn, record_id)` is asked inside the village's transaction before
    anything is attached, with the key of the record's global ID."""
    purposes = frozenset(purposes)
    unknown = purposes - PURPOSES.keys()
    if unknown or not purposes:
        raise ValueError(f"unknown or no purposes for {record_type}: {sorted(unknown)}")
    declared = _declared[record_type] = AttachmentDeclaration(record_type, purposes, exists)
    return declared


def declaration(record_type: str) -> AttachmentDeclaration | None:
    return _declared.get(record_type)
