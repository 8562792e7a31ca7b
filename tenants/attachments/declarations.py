"""Which record types take attachments, for which purposes, and who reaches them.

A record type (a service request, a notice, an activity, a health record, an
import) declares itself once, next to its own code; attaching then works for it
without any change here. A type that has not declared attachments takes none.

Reaching the village is not enough to reach a file: attachment IDs are
sequential, and a draft notice's PDF or a photo of another grid's request must
stay as hidden as the record itself. So each type also says whose eyes its
files are for (`visible`) and who may change them (`writable`), with the rules
of its own domain. The rules take the caller's request context
(`graphql.core.context.RequestContext`); this layer only hands it through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from villagelink.storage.purposes import PURPOSES

# Whether the record `record_id` exists in the village of the connection and takes
# changes to its files now (a notice only as a draft); asked by attach and detach.
RecordExists = Callable[[Connection, str], bool]
# (caller, village, record ids) -> those of the ids whose files the caller may see;
# asked once for a whole batch, so that lists of files stay one query each.
RecordsVisible = Callable[[Any, str, list[str]], set[str]]
# (caller, village, record id) -> whether the caller may attach files to a record
# they see, and detach its files; asked after `visible` and the village's write check.
RecordWritable = Callable[[Any, str, str], bool]


def no_records(_caller: Any, _village: str, _record_ids: list[str]) -> set[str]:
    """The rule of a type that declares none: its files are reached only through its
    own actions (an import's sheet), never by `node(id)`, attach or detach."""
    return set()


def no_one(_caller: Any, _village: str, _record_id: str) -> bool:
    return False


def any_writer(_caller: Any, _village: str, _record_id: str) -> bool:
    """Whoever may change the village's records and sees the record (both checked
    before this is asked): for types whose records have no owner of their own."""
    return True


@dataclass(frozen=True)
class AttachmentDeclaration:
    record_type: str
    purposes: frozenset[str]
    exists: RecordExists
    visible: RecordsVisible
    writable: RecordWritable
    # Whether residents (role `resident`) attach files to the records of this type they
    # see, as well as the village's writers (a photo of the problem they report).
    residents: bool = False


_declared: dict[str, AttachmentDeclaration] = {}


def declare_attachments(
    record_type: str,
    purposes: Iterable[str],
    exists: RecordExists,
    *,
    visible: RecordsVisible = no_records,
    writable: RecordWritable = no_one,
    residents: bool = False,
) -> AttachmentDeclaration:
    """Let records of `record_type` (the GraphQL type name) take files of `purposes`.
    `exists(conn, record_id)` is asked inside the village's transaction before
    anything is attached or detached, with the key of the record's global ID.
    `visible` and `writable` are the caller's reach, asked by the API before that;
    left out, no caller reaches the type's files through the API."""
    purposes = frozenset(purposes)
    unknown = purposes - PURPOSES.keys()
    if unknown or not purposes:
        raise ValueError(f"unknown or no purposes for {record_type}: {sorted(unknown)}")
    declared = _declared[record_type] = AttachmentDeclaration(
        record_type, purposes, exists, visible, writable, residents
    )
    return declared


def declaration(record_type: str) -> AttachmentDeclaration | None:
    return _declared.get(record_type)


def residents_purposes() -> frozenset[str]:
    """What residents may upload: the purposes of the types that take their files."""
    return frozenset().union(*(d.purposes for d in _declared.values() if d.residents))
