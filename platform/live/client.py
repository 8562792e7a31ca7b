"""A Python reader of the live process's event streams (the consoles use the graphql-sse
npm client): for the fan-out bench and the tests, and anyone scripting against it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp


class Refused(Exception):
    """The live process answered with JSON instead of a stream (a refusal)."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body

    @property
    def code(self) -> str | None:
        errors = self.body.get("errors") or [{}]
        return errors[0].get("extensions", {}).get("code")


@contextlib.asynccontextmanager
async def subscription(
    session: aiohttp.ClientSession,
    url: str,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """POST the subscription to `url` (…/graphql/stream); once the stream is open (it
    listens from then on), give the results of its `next` events until `complete`.
    Raises Refused for an answer that is not a stream."""
    headers = {"Accept": "text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"query": query, "variables": variables or {}}
    async with session.post(url, json=body, headers=headers) as response:
        if not response.content_type.startswith("text/event-stream"):
            raise Refused(response.status, await response.json(content_type=None))
        yield _results(response)


async def _results(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    event, data = None, []
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue  # a keep-alive comment
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line:  # the end of one event
            if event == "complete":
                return
            if event == "next":
                yield json.loads("\n".join(data))
            event, data = None, []
