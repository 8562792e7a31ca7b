"""`Subscription.liveEvents`: who follows which village, and which events reach them.

The source stream is set up before anything is sent: the caller's reach is read
from the database once (in a thread: the database client blocks), and a village
the caller does not follow is refused with FORBIDDEN then, so the live process can
answer it as plain JSON instead of opening a stream. After that, each batch of
events a transaction announced (tenants/live.py) is filtered in memory: no query
per event, whatever the number of open consoles.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ariadne import SubscriptionType

from graphql import GraphQLSchema
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.labels import enum_labels
from villagelink.platform.access import Access, resolve_access
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import REGIONAL_COORDINATOR, Principal
from villagelink.tenants import live
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.sensing.queries import staff_of_account

subscription = SubscriptionType()

NOT_FOLLOWED = "您无权接收该村的实时消息"
NOTHING_TO_FOLLOW = "您的账号没有可接收实时消息的村"
SUBJECT_LABEL = {"Alert": "预警", "Request": "诉求"}
STATE_ENUM = {"Alert": "AlertState", "Request": "RequestState"}


@dataclass(frozen=True)
class Follow:
    """What one subscriber sees of one village: everything (`whole`), the shared
    alerts only (a coordinator), or what concerns their grids and themselves (a grid
    worker: `grids`, and the alerts and requests assigned to `staff_id`)."""

    whole: bool = False
    shared_only: bool = False
    grids: frozenset[int] = frozenset()
    staff_id: int | None = None

    def sees(self, event: dict[str, Any]) -> bool:
        if self.whole:
            return True
        if self.shared_only:
            return event["shared"]
        return event["grid"] in self.grids or self.staff_id in event["staff"]

    def owns_tasks_of(self, event: dict[str, Any]) -> bool:
        """Whether the event may change this subscriber's `me.tasks` (coordinators'
        region-wide tasks are not followed live yet)."""
        return not self.shared_only and self.sees(event)


class Broker(Protocol):
    """The live process's fan-out of Redis messages (platform/live/broker.py)."""

    def listen(self, villages: Iterable[str]) -> Listener: ...


class Listener(Protocol):
    async def next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch of a followed village; None ends the stream."""

    def close(self) -> None: ...


@dataclass
class LiveContext:
    """One subscription's caller and the live process's shared clients."""

    principal: Principal
    db: Database
    broker: Broker
    follows: dict[str, Follow] = field(default_factory=dict)

    async def follow(self, village: str | None) -> dict[str, Follow]:
        """The villages this subscription follows; FORBIDDEN for a village the caller
        does not follow (whether or not it exists) or a caller who follows none."""
        loop = asyncio.get_running_loop()
        follows = await loop.run_in_executor(None, functools.partial(self._read, village))
        if village is not None and village not in follows:
            raise Forbidden(NOT_FOLLOWED)
        if not follows:
            raise Forbidden(NOTHING_TO_FOLLOW)
        return follows

    def _read(self, only: str | None) -> dict[str, Follow]:
        with self.db.platform() as conn:
            access = resolve_access(conn, self.principal)
        wanted = access.readable if only is None else access.readable & {only}
        follows = {}
        for village in sorted(wanted):
            found = self._follow(access, village)
            if found is not None:
                follows[village] = found
        return follows

    def _follow(self, access: Access, village: str) -> Follow | None:
        if access.can_manage(village):
            return Follow(whole=True)
        if village in access.grid_scoped:
            with self.db.tenant(village) as conn:
                return Follow(
                    grids=grids_of_account(conn, self.principal.sub),
                    staff_id=staff_of_account(conn, self.principal.sub),
                )
        if self.principal.has(REGIONAL_COORDINATOR):
            return Follow(shared_only=True)
        return None  # an integrator reading residents: not a console


@subscription.source("liveEvents")
async def live_events_source(
    _obj, info, village: str | None = None, kinds: list[str] | None = None
) -> LiveStream:
    context: LiveContext = info.context
    follows = await context.follow(village)
    return LiveStream(
        context.broker, follows, frozenset(kinds or live.LIVE_EVENT_KINDS), info.schema
    )


@subscription.field("liveEvents")
def resolve_live_event(event: dict[str, Any], *_args, **_kwargs) -> dict[str, Any]:
    return event


class LiveStream:
    """The source stream of one subscription. It listens from the moment it is made,
    before the stream's headers go out: a change committed once the client sees the
    stream open is never missed. Closed by the server when the client goes away."""

    def __init__(
        self,
        broker: Broker,
        follows: dict[str, Follow],
        kinds: frozenset[str],
        schema: GraphQLSchema,
    ):
        self.follows, self.kinds, self.schema = follows, kinds, schema
        self.listener = broker.listen(follows)
        self.ready: list[dict[str, Any]] = []

    def __aiter__(self) -> LiveStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self.ready:
            batch = await self.listener.next_batch()
            if batch is None:
                await self.aclose()
                raise StopAsyncIteration
            self.ready = delivered(batch, self.follows, self.kinds, self.schema)
        return self.ready.pop(0)

    async def aclose(self) -> None:
        self.listener.close()


def delivered(
    batch: list[dict[str, Any]],
    follows: dict[str, Follow],
    kinds: frozenset[str],
    schema: GraphQLSchema,
) -> list[dict[str, Any]]:
    """What one subscriber gets of one transaction's events in one village: those it
    sees and asked for, then one TASKS_CHANGED if any of them touches its tasks."""
    follow = follows.get(batch[0]["village"]) if batch else None
    if follow is None:
        return []
    out = [
        live_event(event, event["kind"], schema)
        for event in batch
        if event["kind"] in kinds and follow.sees(event)
    ]
    if live.TASKS_CHANGED in kinds:
        cause = next((e for e in batch if follow.owns_tasks_of(e)), None)
        if cause is not None:
            out.append(live_event(cause, live.TASKS_CHANGED, schema))
    return out


def live_event(event: dict[str, Any], kind: str, schema: GraphQLSchema) -> dict[str, Any]:
    """The API's LiveEvent (snake_case keys; the schema converts names) for `event`."""
    summary = _summary(event, schema)
    if kind == live.TASKS_CHANGED:
        summary = f"您的待办有更新：{summary}"
    return {
        "kind": kind,
        "village": event["village"],
        "subject_id": encode_id(event["subjectType"], event["village"], event["subjectKey"]),
        "occurred_at": datetime.fromisoformat(event["occurredAt"]),
        "summary": summary,
    }


def _summary(event: dict[str, Any], schema: GraphQLSchema) -> str:
    """新预警：<its summary>, or 预警「…」已确认 / 诉求「…」已派单 (the state's label from
    the schema, or the event's note where the state does not say what happened)."""
    if event["kind"] == live.ALERT_RAISED:
        return f"新预警：{event['text']}"
    subject = event["subjectType"]
    what = event["note"] or _labels(schema)[(STATE_ENUM[subject], event["state"].upper())]
    return f"{SUBJECT_LABEL[subject]}「{event['text']}」{what}"


@functools.cache
def _labels(schema: GraphQLSchema) -> dict[tuple[str, str], str]:
    return {(row["enum"], row["value"]): row["label"] for row in enum_labels(schema)}


bindables = [subscription]
