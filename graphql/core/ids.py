"""Opaque global IDs: type, village and key, base64url-encoded.

Decoding only says what an ID claims to be; whether the caller may see it is
decided by the resolver that loads it (another village's ID gives NOT_FOUND).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, NamedTuple

from villagelink.graphql.core.errors import NotFound
from villagelink.tenants.user_errors import NOT_FOUND as USER_NOT_FOUND
from villagelink.tenants.user_errors import refused


class GlobalId(NamedTuple):
    type_name: str
    village: str
    key: str


def encode_id(type_name: str, village: str, key: object) -> str:
    raw = f"{type_name}:{village}:{key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_id(value: str, expected_type: str | None = None) -> GlobalId:
    """Parse an ID; malformed ones and ones of another type are simply not found."""
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, village, key = base64.urlsafe_b64decode(padded).decode().split(":", 2)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise NotFound(expected_type or "object") from exc
    if expected_type is not None and type_name != expected_type:
        raise NotFound(expected_type)
    return GlobalId(type_name, village, key)


def target_id(raw: str, type_name: str, may_act: Callable[[str], Any]) -> GlobalId:
    """The ID of the object a mutation acts on. `may_act(village)` runs before the key
    is looked at (e.g. `ctx.require_write`), so that outside the caller's reach a
    malformed ID and a well-formed one are refused alike."""
    gid = decode_id(raw, type_name)
    may_act(gid.village)
    if not gid.key.isdigit():
        raise NotFound(type_name)
    return gid


def int_key(gid: GlobalId) -> int:
    try:
        return int(gid.key)
    except ValueError as exc:
        raise NotFound(gid.type_name) from exc


def filter_key(raw: str | None, type_name: str, village: str) -> int | None:
    """The integer key of an ID given as a filter argument. An ID of another village
    matches nothing here (-1) rather than telling whether it exists."""
    if raw is None:
        return None
    gid = decode_id(raw, type_name)
    return int(gid.key) if gid.village == village and gid.key.isdigit() else -1


NOT_IN_VILLAGE = "所选对象不存在或不在本村"


def input_key(
    village: str, raw: str | None, type_name: str, field: str, message: str = NOT_IN_VILLAGE
) -> int | None:
    """The integer key of an ID given in a mutation's input. An ID of another village
    or type, or a malformed one, is refused like any other bad input: a userError
    NOT_FOUND on `field`, which says nothing about whether it exists elsewhere."""
    if raw is None:
        return None
    try:
        gid = decode_id(raw, type_name)
    except NotFound:
        gid = None
    if gid is None or gid.village != village or not gid.key.isdigit():
        raise refused(field, message, USER_NOT_FOUND)
    return int(gid.key)
