"""Global IDs of webhook records. They belong to a client, not to a village, so their
village part is empty, and `node(id)` does not serve them: they are read through
`webhookSubscriptions`. The delivery ID is also the X-Villagelink-Delivery header."""

from __future__ import annotations

from villagelink.graphql.core.errors import NotFound
from villagelink.graphql.core.ids import decode_id, encode_id, key_number
from villagelink.platform.webhooks.actions import DELIVERY, SUBSCRIPTION
from villagelink.tenants.user_errors import NOT_FOUND, refused

NO_VILLAGE = ""


def subscription_gid(subscription_id: int) -> str:
    return encode_id(SUBSCRIPTION, NO_VILLAGE, subscription_id)


def delivery_gid(delivery_id: int) -> str:
    return encode_id(DELIVERY, NO_VILLAGE, delivery_id)


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
