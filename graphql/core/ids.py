"""Opaque global IDs: type, village and key, base64url-encoded.

Decoding only says what an ID claims to be; whether the caller may see it is
decided by the resolver that loads it (another village's ID gives NOT_FOUND).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from villagelink.graphql.core.errors import NotFound
from villagelink.tenants.fields import MISSING
from villagelink.tenants.user_errors import NOT_FOUND as USER_NOT_FOUND
from villagelink.tenants.user_errors import refused

# IDs whose parse a process keeps (`_parsed`): a few thousand short strings, under a
# megabyte, however many distinct IDs callers send.
PARSED_IDS = 8192
# Every table's key is a bigint identity.
BIGINT_MAX = 2**63 - 1
# ASCII digits only (`str.isdigit` and `int` also take "²" and "٣"), no sign, no
# leading zero: one spelling per key, so an ID cannot name a row by another spelling.
_CANONICAL_KEY = re.compile(r"0|[1-9][0-9]{0,18}")


class GlobalId(NamedTuple):
    type_name: str
    village: str
    key: str


def encode_id(type_name: str, village: str, key: object) -> str:
    raw = f"{type_name}:{village}:{key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_id(value: str, expected_type: str | None = None) -> GlobalId:
    """Parse an ID; malformed ones and ones of another type are simply not found."""
    gid = _parsed(value) if type(value) is str else None
    if gid is None:
        raise NotFound(expected_type or "object")
    if expected_type is not None and gid.type_name != expected_type:
        raise NotFound(expected_type)
    return gid


@lru_cache(maxsize=PARSED_IDS)
def _parsed(value: str) -> GlobalId | None:
    """What an ID spells, or None. Kept for the IDs a process sees again and again: a
    device platform's batch names each of its devices every time (700 in the bench's
    batch), and the decoding and re-encoding below took a tenth of its gateway CPU."""
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, village, key = base64.urlsafe_b64decode(padded).decode().split(":", 2)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Decoding skips what is not base64 and takes padding or not: only the spelling
    # `encode_id` gives names the object, so that an ID has one spelling.
    if encode_id(type_name, village, key) != value:
        return None
    return GlobalId(type_name, village, key)


def key_number(key: str) -> int | None:
    """The integer a key spells, or None unless it is the key's one canonical spelling
    (ASCII decimal within bigint): the only parser of integer keys, IDs and cursors alike."""
    if not _CANONICAL_KEY.fullmatch(key):
        return None
    number = int(key)
    return number if number <= BIGINT_MAX else None


def target_id(raw: str, type_name: str, may_act: Callable[[str], Any]) -> GlobalId:
    """The ID of the object a mutation acts on, its key canonical (so `int(gid.key)`
    is exact). `may_act(village)` runs before the key is looked at (e.g.
    `ctx.require_write`), so that outside the caller's reach a malformed ID and a
    well-formed one are refused alike."""
    gid = decode_id(raw, type_name)
    may_act(gid.village)
    int_key(gid)
    return gid


def int_key(gid: GlobalId) -> int:
    """The integer key of an ID; any other spelling is not found, like a missing row."""
    number = key_number(gid.key)
    if number is None:
        raise NotFound(gid.type_name)
    return number


def filter_key(raw: str | None, type_name: str, village: str) -> int | None:
    """The integer key of an ID given as a filter argument. An ID of another village,
    or not spelled canonically, matches nothing here (-1) rather than telling whether
    it exists."""
    if raw is None:
        return None
    gid = decode_id(raw, type_name)
    number = key_number(gid.key) if gid.village == village else None
    return -1 if number is None else number


NOT_IN_VILLAGE = "所选对象不存在或不在本村"


def input_key(
    village: str, raw: str | None, type_name: str, field: str, message: str = NOT_IN_VILLAGE
) -> int | None:
    """The integer key of an ID given in a mutation's input. An ID of another village
    or type, or a malformed one, is refused like any other bad input: a userError
    NOT_FOUND on `field`, which says nothing about whether it exists elsewhere. A blank
    one is REQUIRED."""
    if raw is None:
        return None
    if not raw.strip():
        # Left blank (a form's unpicked choice): what to fix is to choose one, not that
        # some object does not exist.
        raise refused(field, MISSING, MISSING.code)
    try:
        gid = decode_id(raw, type_name)
    except NotFound:
        gid = None
    number = key_number(gid.key) if gid is not None and gid.village == village else None
    if number is None:
        raise refused(field, message, USER_NOT_FOUND)
    return number
