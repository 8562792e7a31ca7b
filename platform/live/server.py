"""`villagelink live`: GraphQL subscriptions over graphql-sse, distinct connections mode.

An asyncio process of its own, so that hundreds of open consoles hold sockets here
and never a request thread of the gateway. `POST /graphql/stream` takes the
GraphQL-over-HTTP request body with `Accept: text/event-stream` and answers with
an event stream: `event: next` with each result, `event: complete` at the end, and
a comment every KEEPALIVE_SECONDS so that proxies keep an idle stream open.

Refusals before the stream: a missing or bad token (401 UNAUTHENTICATED) and a
village the caller does not follow (403 FORBIDDEN) are plain JSON, so that a
console tells them from a dropped connection; parse and validation errors go
through the stream as a `next` with the errors, as the protocol asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationType,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from villagelink.graphql.core import errors as codes
from villagelink.graphql.core.errors import ApiError, error_body
from villagelink.graphql.core.limits import check_limits
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.gateway import HttpFailure, _choose_operation, _format, read_json
from villagelink.graphql.live.subscription import LiveContext
from villagelink.platform.cors import ALLOWED_HEADERS, EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import Principal
from villagelink.platform.identity.tokens import InvalidToken, TokenVerifier, make_verifier
from villagelink.platform.live.broker import Broker
from villagelink.platform.settings import Settings

log = logging.getLogger(__name__)

STREAM_PATH = "/graphql/stream"
EVENT_STREAM = "text/event-stream"
KEEPALIVE_SECONDS = 15.0
# How long a stop waits for open streams: they are ended, their consoles reconnect.
SHUTDOWN_SECONDS = 2.0


class LiveRuntime:
    """What every stream of the process shares."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # Only subscribing reads the database (the caller's reach), in a thread each.
        self.db = Database(
            settings.database_url, statement_timeout_ms=settings.statement_timeout_ms, pool_size=4
        )
        self.verifier: TokenVerifier = make_verifier(settings)
        self.broker = Broker(settings.redis_url)
        self.origins = allowed_origins(settings)


RUNTIME = web.AppKey("runtime", LiveRuntime)


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The console's own origin (it is served by the gateway, on another port) and the
    origins CORS_ALLOWED_ORIGINS names for the gateway."""
    public = urlsplit(settings.public_url)
    return frozenset({f"{public.scheme}://{public.netloc}", *settings.cors_allowed_origins})


def create_live_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_cors])
    runtime = app[RUNTIME] = LiveRuntime(settings)
    app.router.add_post(STREAM_PATH, _stream)
    app.router.add_get("/healthz", _health)
    app.cleanup_ctx.append(_relay)
    app.on_cleanup.append(lambda _app: asyncio.to_thread(runtime.db.dispose))
    return app


async def _relay(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[RUNTIME].broker.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _cors_headers(request: web.Request) -> dict[str, str]:
    """CORS as platform/cors.py answers it for the gateway: an allowed origin gets the
    headers, any other none (and the browser keeps the answer from the page)."""
    origins = request.app[RUNTIME].origins
    origin = request.headers.get("Origin")
    headers = {"Vary": "Origin"}
    if origin is not None and (origin in origins or "*" in origins):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return headers


@web.middleware
async def _cors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    headers = _cors_headers(request)
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        if "Access-Control-Allow-Origin" not in headers:
            return web.Response(status=403, headers=headers)
        return web.Response(
            status=204,
            headers={
                **headers,
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            },
        )
    response = await handler(request)
    if not response.prepared:  # a stream sent these with its own headers
        response.headers.update(headers)
    return response


async def _health(request: web.Request) -> web.Response:
    broker = request.app[RUNTIME].broker
    return web.json_response(
        {"status": "ok", "redis": broker.connected, "streams": broker.streams},
        status=200 if broker.connected else 503,
    )


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


async def _stream(request: web.Request) -> web.StreamResponse:
    runtime: LiveRuntime = request.app[RUNTIME]
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    try:
        if EVENT_STREAM not in request.headers.get("Accept", ""):
            raise HttpFailure(
                406, f"subscriptions answer in {EVENT_STREAM} only", codes.BAD_REQUEST
            )
        principal = await _authenticate(request, runtime.verifier)
        params = await _read_params(request)
    except HttpFailure as failure:
        return _json(failure.status, error_body(failure.message, failure.code), failure.headers)
    context = LiveContext(principal, runtime.db, runtime.broker)
    outcome = _prepare(params, context, runtime.settings)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if isinstance(outcome, ExecutionResult):
        refused = _refusal(outcome)
        if refused is not None:
            errors = [_format(e, codes.BAD_USER_INPUT, request_id) for e in outcome.errors or ()]
            return _json(REFUSAL_STATUS[refused], {"errors": errors})
        return await _send(request, _once(_result(outcome, request_id)), request_id)
    return await _send(request, _results(outcome, request_id), request_id)


# Refusals of the caller (not of the document), answered as JSON with this status.
REFUSAL_STATUS = {codes.UNAUTHENTICATED: 401, codes.FORBIDDEN: 403}


def _refusal(result: ExecutionResult) -> str | None:
    for error in result.errors or ():
        if isinstance(error.original_error, ApiError):
            code = (error.original_error.extensions or {}).get("code")
            if code in REFUSAL_STATUS:
                return code
    return None


async def _authenticate(request: web.Request, verifier: TokenVerifier) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpFailure(
            401,
            "missing bearer token",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink"'},
        )
    loop = asyncio.get_running_loop()
    try:
        # A key set fetched from the issuer blocks: not on the loop every stream shares.
        claims = await loop.run_in_executor(None, verifier.verify, token.strip())
    except InvalidToken as exc:
        raise HttpFailure(
            401,
            f"invalid token: {exc}",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink", error="invalid_token"'},
        ) from exc
    return Principal.from_claims(claims)


async def _read_params(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise HttpFailure(415, "send the request as application/json", codes.BAD_REQUEST)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise HttpFailure(413, "request body too large", codes.BAD_REQUEST) from exc
    params = read_json(raw or b"null", "request body")
    if not isinstance(params, dict):
        raise HttpFailure(400, "request body must be a JSON object", codes.BAD_REQUEST)
    if not isinstance(params.get("query"), str) or not params["query"].strip():
        raise HttpFailure(400, "query must be a non-empty string", codes.BAD_REQUEST)
    if params.get("variables") is not None and not isinstance(params["variables"], dict):
        raise HttpFailure(400, "variables must be a JSON object", codes.BAD_REQUEST)
    if params.get("operationName") is not None and not isinstance(params["operationName"], str):
        raise HttpFailure(400, "operationName must be a string", codes.BAD_REQUEST)
    return params


def _prepare(params: dict, context: LiveContext, settings: Settings) -> Any:
    """Parse, validate (the gateway's limits and rules) and subscribe: an
    ExecutionResult with the errors, or the stream of results (maybe awaitable)."""
    schema = executable_schema()
    try:
        document = parse(params["query"])
    except GraphQLError as exc:
        return ExecutionResult(None, [_coded(exc, codes.GRAPHQL_PARSE_FAILED)])
    operation = _choose_operation(document, params.get("operationName"))
    if operation is not None and operation.operation != OperationType.SUBSCRIPTION:
        only = GraphQLError("queries and mutations go to /graphql; only subscriptions here")
        return ExecutionResult(None, [_coded(only, codes.BAD_REQUEST)])
    problems = check_limits(
        schema,
        document,
        params.get("variables"),
        max_depth=settings.max_query_depth,
        max_cost=settings.max_query_cost,
        max_page_size=settings.max_page_size,
    ) or validate(schema, document, specified_rules)
    if problems:
        return ExecutionResult(None, [_coded(p, codes.GRAPHQL_VALIDATION_FAILED) for p in problems])
    return subscribe(
        schema,
        document,
        context_value=context,
        variable_values=params.get("variables"),
        operation_name=params.get("operationName"),
    )


def _coded(error: GraphQLError, code: str) -> GraphQLError:
    error.extensions = {"code": code, **(error.extensions or {})}
    return error


def _result(result: ExecutionResult, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [_format(e, codes.BAD_USER_INPUT, request_id) for e in result.errors]
    if result.data is not None or not result.errors:
        body["data"] = result.data
    return body


async def _once(body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    yield body


async def _results(
    stream: AsyncIterator[ExecutionResult], request_id: str
) -> AsyncIterator[dict[str, Any]]:
    try:
        async for result in stream:
            yield _result(result, request_id)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


async def _send(
    request: web.Request, results: AsyncIterator[dict[str, Any]], request_id: str
) -> web.StreamResponse:
    """Stream `results` as `next` events, then `complete`; a comment whenever nothing
    was sent for KEEPALIVE_SECONDS. A console that goes away cancels the handler
    (handler_cancellation), which closes its stream and its place in the broker."""
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{EVENT_STREAM}; charset=utf-8",
            "Cache-Control": "no-cache",
            # nginx and the like must pass each event on at once.
            "X-Accel-Buffering": "no",
            "X-Request-Id": request_id,
            **_cors_headers(request),
        }
    )
    await response.prepare(request)
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(results))
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            try:
                body = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            await response.write(_event("next", json.dumps(body, ensure_ascii=False, default=str)))
        await response.write(b"event: complete\ndata:\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        log.debug("live: stream %s ended by its client", request_id)
        raise
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await results.aclose()  # type: ignore[attr-defined]
    return response


def serve(settings: Settings) -> None:
    """Run the live process until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    web.run_app(
        create_live_app(settings),
        host=settings.http_host,
        port=settings.live_port,
        # A console that closes its stream cancels its handler: its place is freed now,
        # not at the next keep-alive that fails to write.
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_SECONDS,
        access_log=None,
        print=lambda _line: log.info("live: serving %s%s", settings.live_public_url, STREAM_PATH),
    )
