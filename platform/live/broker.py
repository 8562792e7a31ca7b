"""One Redis subscription per live process, fanned out to every open stream in memory.

However many consoles are open, the process holds one pub/sub connection (all
villages' channels); each stream gets the batches of the villages it follows
through a bounded queue. When Redis goes away the broker says so (`/healthz`) and
subscribes again once it is back; the streams stay open.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from villagelink.platform.live.channel import EVERY_VILLAGE, village_of

log = logging.getLogger(__name__)

# Batches a stream may fall behind by before it is ended: a stalled client must not
# make the process hoard memory.
BACKLOG = 256
RECONNECT_SECONDS = 1.0


class Listener:
    """One stream's queue of batches of the villages it follows."""

    def __init__(self, broker: Broker, villages: frozenset[str]):
        self.broker = broker
        self.villages = villages
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(BACKLOG)
        self.behind = False

    def offer(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.behind = True

    async def next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch, or None once the stream fell BACKLOG behind: it ends (with
        `complete`), and its console subscribes again and reads what it missed."""
        if self.behind and self.queue.empty():
            return None
        return await self.queue.get()

    def close(self) -> None:
        self.broker.forget(self)


class Broker:
    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.listeners: dict[str, set[Listener]] = {}
        self.connected = False

    def listen(self, villages: Iterable[str]) -> Listener:
        listener = Listener(self, frozenset(villages))
        for village in listener.villages:
            self.listeners.setdefault(village, set()).add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        for village in listener.villages:
            found = self.listeners.get(village)
            if found is not None:
                found.discard(listener)
                if not found:
                    del self.listeners[village]

    @property
    def streams(self) -> int:
        return len({id(x) for found in self.listeners.values() for x in found})

    async def run(self) -> None:
        """Relay every village's messages until cancelled, reconnecting after a failure."""
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(EVERY_VILLAGE)
                self.connected = True
                log.info("live: subscribed to %s", EVERY_VILLAGE)
                async for message in pubsub.listen():
                    self._relay(message)
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("live: lost Redis (%s); subscribing again", exc)
                self.connected = False
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                self.connected = False
                await client.aclose()

    def _relay(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage":
            return
        village = village_of(_text(message["channel"]))
        listeners = self.listeners.get(village)
        if not listeners:
            return
        try:
            batch = json.loads(message["data"])
        except ValueError:
            log.warning("live: a message on %s is not JSON; ignored", village)
            return
        for listener in listeners:
            listener.offer(batch)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
