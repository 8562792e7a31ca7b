"""Where live events travel between the processes that commit them and the live process.

One Redis channel per village; one message per committed transaction and village, a
JSON list of the events it announced (tenants/live.py). Pub/sub keeps nothing: a
console that was not listening reads the state from the API when it opens, so losing
a message loses no data, only a notification.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

CHANNEL_PREFIX = "villagelink:live:"
# Every village's channel, as the live process subscribes to them.
EVERY_VILLAGE = CHANNEL_PREFIX + "*"
# A commit waits at most this long for Redis before it logs the failure and goes on.
PUBLISH_TIMEOUT_SECONDS = 1.0


def channel(village: str) -> str:
    return CHANNEL_PREFIX + village


def village_of(channel_name: str) -> str:
    return channel_name.removeprefix(CHANNEL_PREFIX)


def publisher(redis_url: str) -> Callable[[list[dict[str, Any]]], None]:
    """The `announce_committed` of a Database: publishes a transaction's events, one
    message per village, in one round trip."""
    client = redis.Redis.from_url(
        redis_url,
        socket_timeout=PUBLISH_TIMEOUT_SECONDS,
        socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
    )

    def publish(events: list[dict[str, Any]]) -> None:
        by_village: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_village.setdefault(event["village"], []).append(event)
        pipe = client.pipeline(transaction=False)
        for village, batch in by_village.items():
            pipe.publish(channel(village), json.dumps(batch, ensure_ascii=False))
        pipe.execute()

    return publish
