"""/graphql over HTTP (the GraphQL-over-HTTP spec): authentication, limits, execution.

The order of checks: method, accepted media type, bearer token, rate limit,
request body, parse, operation choice (no mutations over GET), validation
(standard rules, depth, cost), execution. Every failure answers with a
GraphQL-shaped body whose errors carry `extensions.code`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from typing import Any

import psycopg
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from villagelink.graphql.core import errors as codes
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import ApiError, error_body
from villagelink.graphql.core.limits import Deadline, check_limits
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.core.text import storable_text_rule
from villagelink.platform.api_clients import note_use
from villagelink.platform.identity.principal import INTEGRATOR, Principal
from villagelink.platform.identity.tokens import InvalidToken
from villagelink.platform.metrics import observe_request

log = logging.getLogger(__name__)
blueprint = Blueprint("graphql", __name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ALLOWED_METHODS = "GET, POST"


class HttpFailure(Exception):
    """Ends a request before execution with a status and a GraphQL-shaped body."""

    def __init__(self, status: int, message: str, code: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _runtime():
    from villagelink.platform.app import runtime_of

    return runtime_of(current_app)


@blueprint.route("/graphql", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def graphql_http() -> Response:
    started = time.perf_counter()
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    media = JSON
    operation = "invalid"
    try:
        media = _negotiate()
        if request.method not in ("GET", "POST"):
            raise HttpFailure(
                405, "use GET for queries or POST", codes.BAD_REQUEST, {"Allow": ALLOWED_METHODS}
            )
        principal = _authenticate()
        _check_rate(principal)
        if principal.has(INTEGRATOR) and principal.client_id:
            note_use(_runtime(), principal.client_id)
        params = _read_params()
        operation = params.get("operationName") or "anonymous"
        status, body, operation = _run(params, principal, request_id, media)
    except HttpFailure as failure:
        status, body = failure.status, error_body(failure.message, failure.code)
        response = _respond(status, body, media, request_id)
        response.headers.update(failure.headers)
        _observe(operation, started, body)
        return response
    _observe(operation, started, body)
    return _respond(status, body, media, request_id)


def _observe(operation: str, started: float, body: dict) -> None:
    error_codes = [
        e.get("extensions", {}).get("code", codes.INTERNAL) for e in body.get("errors", ())
    ]
    observe_request(operation[:64], time.perf_counter() - started, error_codes)


def _negotiate() -> str:
    """The media type of the answer: the spec's own when the client names it, JSON otherwise.

    A wildcard (`*/*`, `application/*`) or no Accept at all gets JSON, as the spec asks: only a
    client that names `application/graphql-response+json` is known to read its status codes.
    """
    accept = request.accept_mimetypes
    if not request.headers.get("Accept"):
        return JSON
    named = {value.lower() for value, quality in accept if quality > 0}
    if GRAPHQL_RESPONSE in named and accept.quality(GRAPHQL_RESPONSE) >= accept.quality(JSON):
        return GRAPHQL_RESPONSE
    if accept.quality(JSON) > 0:
        return JSON
    raise HttpFailure(406, f"can answer in {GRAPHQL_RESPONSE} or {JSON} only", codes.BAD_REQUEST)


def _respond(status: int, body: dict, media: str, request_id: str) -> Response:
    try:
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        # An error message may quote the request's own text, lone surrogates and all;
        # escaped they are still JSON, where raw they cannot be UTF-8.
        payload = json.dumps(body, default=str).encode()
    response = Response(
        payload,
        status=status,
        content_type=f"{media}; charset=utf-8",
    )
    response.headers["X-Request-Id"] = request_id
    return response


def _authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpFailure(
            401,
            "missing bearer token",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink"'},
        )
    try:
        claims = _runtime().verifier.verify(token.strip())
    except InvalidToken as exc:
        raise HttpFailure(
            401,
            f"invalid token: {exc}",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink", error="invalid_token"'},
        ) from exc
    return Principal.from_claims(claims)


def _check_rate(principal: Principal) -> None:
    """A fixed one-minute window per caller in Redis. If Redis is down the request
    goes through: the limit protects the service, it must not take it down."""
    runtime = _runtime()
    limit = runtime.settings.rate_limit_per_minute
    window = int(time.time() // 60)
    key = f"villagelink:rate:{principal.client_id or '-'}:{principal.sub}:{window}"
    try:
        pipe = runtime.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    except Exception:
        log.warning("rate limiter unavailable; request allowed", exc_info=True)
        return
    if count > limit:
        raise HttpFailure(
            429,
            f"more than {limit} requests a minute; slow down",
            codes.RATE_LIMITED,
            {"Retry-After": str(60 - int(time.time()) % 60)},
        )


def _read_params() -> dict[str, Any]:
    if request.method == "GET":
        params: dict[str, Any] = {
            "query": request.args.get("query"),
            "operationName": request.args.get("operationName") or None,
        }
        raw = request.args.get("variables")
        params["variables"] = read_json(raw, "variables") if raw else None
    else:
        if request.mimetype != JSON:
            raise HttpFailure(415, f"send the request as {JSON}", codes.BAD_REQUEST)
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge as exc:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            raise HttpFailure(413, f"request body over {limit} bytes", codes.BAD_REQUEST) from exc
        params = read_json(body or b"null", "request body")
        if not isinstance(params, dict):
            raise HttpFailure(400, "request body must be a JSON object", codes.BAD_REQUEST)
    if not isinstance(params.get("query"), str) or not params["query"].strip():
        raise HttpFailure(400, "query must be a non-empty string", codes.BAD_REQUEST)
    if params.get("variables") is not None and not isinstance(params["variables"], dict):
        raise HttpFailure(400, "variables must be a JSON object", codes.BAD_REQUEST)
    if params.get("operationName") is not None and not isinstance(params["operationName"], str):
        raise HttpFailure(400, "operationName must be a string", codes.BAD_REQUEST)
    return params


# Deeper than any variables an operation needs; bounds every later walk of them.
MAX_JSON_DEPTH = 64


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is beyond what a number can hold")
    return number


def read_json(raw: str | bytes, what: str) -> Any:
    """JSON as RFC 8259 has it: numbers finite (no `1e400`, `NaN` or `Infinity`), text
    valid UTF-8, nesting at most MAX_JSON_DEPTH. Anything else is 400 BAD_REQUEST."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError as exc:
        raise HttpFailure(400, f"{what} is nested too deeply", codes.BAD_REQUEST) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise HttpFailure(400, f"{what} is not JSON", codes.BAD_REQUEST) from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise HttpFailure(
            400, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels", codes.BAD_REQUEST
        )
    return value


def _depth(value: Any) -> int:
    """How deep a JSON value nests, walked without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            pending.extend((inner, depth + 1) for inner in item.values())
        elif isinstance(item, list):
            pending.extend((inner, depth + 1) for inner in item)
    return deepest


def _request_error_status(media: str) -> int:
    # The spec's media type reports request errors as 400; legacy JSON keeps 200.
    return 400 if media == GRAPHQL_RESPONSE else 200


def _choose_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _run(params: dict, principal: Principal, request_id: str, media: str) -> tuple[int, dict, str]:
    runtime = _runtime()
    settings = runtime.settings
    try:
        document = parse(params["query"])
    except GraphQLError as exc:
        return (
            _request_error_status(media),
            {"errors": [_format(exc, codes.GRAPHQL_PARSE_FAILED, request_id)]},
            "invalid",
        )
    operation = _choose_operation(document, params.get("operationName"))
    name = (operation.name.value if operation and operation.name else None) or "anonymous"
    if (
        operation is not None
        and operation.operation != OperationType.QUERY
        and request.method == "GET"
    ):
        raise HttpFailure(405, "mutations are sent with POST", codes.BAD_REQUEST, {"Allow": "POST"})
    if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
        raise HttpFailure(
            400,
            f"subscriptions are served by the live process: POST "
            f"{settings.live_public_url.rstrip('/')}/graphql/stream (docs/live.md)",
            codes.BAD_REQUEST,
        )
    schema = executable_schema()
    # The limits first: they are linear in the document, and refuse the documents whose
    # expansion would make the standard rules (overlapping fields) run for minutes.
    problems = check_limits(
        schema,
        document,
        params.get("variables"),
        max_depth=settings.max_query_depth,
        max_cost=settings.max_query_cost,
        max_page_size=settings.max_page_size,
    ) or validate(schema, document, [*specified_rules, storable_text_rule(params.get("variables"))])
    if problems:
        return (
            _request_error_status(media),
            {"errors": [_format(p, codes.GRAPHQL_VALIDATION_FAILED, request_id) for p in problems]},
            name,
        )

    read_only = operation is not None and operation.operation == OperationType.QUERY
    context = RequestContext(runtime, principal, request_id, read_only=read_only)
    result = execute(
        schema,
        document,
        context_value=context,
        variable_values=params.get("variables"),
        operation_name=params.get("operationName"),
        middleware=[Deadline(settings.request_deadline_ms)],
    )
    errors = result.errors or []
    unexpected = [e for e in errors if e.path is not None and not _expected(e)]
    try:
        context.finish(commit=not unexpected)
    except Exception:
        log.exception("request %s: commit failed", request_id)
        return 500, error_body(codes.INTERNAL_MESSAGE, codes.INTERNAL, requestId=request_id), name
    body: dict[str, Any] = {}
    if errors:
        # Errors without a path come before execution: variables that do not fit.
        body["errors"] = [_format(e, codes.BAD_USER_INPUT, request_id) for e in errors]
    executed = not errors or any(e.path is not None for e in errors)
    if executed:
        body["data"] = result.data
    status = 200 if "data" in body else _request_error_status(media)
    return status, body, name


REFUSED_BY_DATABASE = "输入的值超出允许的范围或格式，未保存任何更改"


def _refused_by_database(error: Exception | None) -> bool:
    """Whether PostgreSQL refused a value (out of range, malformed, against a check
    constraint): SQLAlchemy wraps the driver's error as `orig`."""
    cause = getattr(error, "orig", None)
    return isinstance(cause, (psycopg.errors.DataError, psycopg.errors.CheckViolation))


def _expected(error: GraphQLError) -> bool:
    return isinstance(error.original_error, ApiError) or error.original_error is None


def _format(error: GraphQLError, default_code: str, request_id: str) -> dict:
    """The client's view of an error: message, locations, path and a code; an
    unexpected exception shows as INTERNAL with the request id, and is logged."""
    formatted = error.formatted
    original = error.original_error
    if error.path is not None and _refused_by_database(original):
        # The actions validate what they write; a value that still gets this far is
        # the caller's, not a fault of ours. The request is rolled back all the same.
        log.warning("request %s: the database refused a value: %s", request_id, original)
        formatted["message"] = REFUSED_BY_DATABASE
        formatted["extensions"] = {"code": codes.BAD_USER_INPUT, "requestId": request_id}
        return formatted
    if error.path is not None and original is not None and not isinstance(original, ApiError):
        log.error(
            "request %s: %s failed", request_id, ".".join(map(str, error.path)), exc_info=original
        )
        formatted["message"] = codes.INTERNAL_MESSAGE
        formatted["extensions"] = {"code": codes.INTERNAL, "requestId": request_id}
        return formatted
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", default_code)
    formatted["extensions"] = extensions
    return formatted
