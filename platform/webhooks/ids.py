"""Global IDs of webhook records. They belong to a client, not to a village, so their
village part is empty, and `node(id)` does not serve them: they are read through
`webhookSubscriptions`. The delivery ID is also the X-Villagelink-Delivery header.

Here rather than in the API's webhook package: the delivery job signs that header in a
work horse forked per job, and importing the API package there (its mutations and
types, some 300 modules) cost most of a second on every delivery.
"""

from __future__ import annotations

from villagelink.graphql.core.ids import encode_id

SUBSCRIPTION = "WebhookSubscription"
DELIVERY = "WebhookDelivery"
NO_VILLAGE = ""


def subscription_gid(subscription_id: int) -> str:
    return encode_id(SUBSCRIPTION, NO_VILLAGE, subscription_id)


def delivery_gid(delivery_id: int) -> str:
    return encode_id(DELIVERY, NO_VILLAGE, delivery_id)
