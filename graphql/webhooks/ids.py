"""Webhook records' global IDs given in the API's inputs (the IDs themselves are made in
villagelink.platform.webhooks.ids)."""

from __future__ import annotations

from villagelink.graphql.core.errors import NotFound
from villagelink.graphql.core.ids import decode_id, key_number
from villagelink.platform.webhooks.ids import NO_VILLAGE
from villagelink.tenants.user_errors import NOT_FOUND, refused


def webhook_key(raw: str, type_name: str, field: str, message: str) -> int:
    """The integer key of a webhook record's ID given in an input; a malformed ID, or one
    of another type, is a userError NOT_FOUND like an ID of someone else's record."""
    try:
        gid = decode_id(raw, type_name)
    except NotFound:
        gid = None
    number = key_number(gid.key) if gid is not None and gid.village == NO_VILLAGE else None
    if number is None:
        raise refused(field, message, NOT_FOUND)
    return number
