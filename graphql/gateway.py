"""/graphql over HTTP (the GraphQL-over-HTTP spec): authentication, limits, execution.

The order of checks: method, accepted media type, bearer token, the caller's budget (its
minimum charge), request body, the persisted document a hash names, parse, operation
choice (no mutations over GET), validation (standard rules, depth, cost), the budget again
(the operation's cost), execution. Every failure answers with a GraphQL-shaped body whose
errors carry `extensions.code`; every answer after the budget's first charge carries the
RateLimit-* headers, and every answer to a measured document `extensions.cost`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from functools import lru_cache
from typing import Any

import orjson
import psycopg
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from villagelink.graphql.core import errors as codes
from villagelink.graphql.core import persisted
from villagelink.graphql.core.budget import MIN_CHARGE, Budget
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import ApiError, error_body
from villagelink.graphql.core.executor import GatewayExecutor
from villagelink.graphql.core.limits import Deadline, check_limits
from villagelink.graphql.core.messages import localize_errors, request_language
from villagelink.graphql.core.nesting import json_depth
from villagelink.graphql.core.schema import executable_schema
from villagelink.graphql.core.text import StorableLiterals, refused_variables
from villagelink.platform.api_clients import note_use
from villagelink.platform.identity.callers import Callers
from villagelink.platform.identity.principal import INTEGRATOR, Principal
from villagelink.platform.identity.tokens import InvalidToken
from villagelink.platform.metrics import observe_request
from villagelink.platform.persisted_documents import document_hash

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
    meter: Meter | None = None
    try:
        media = _negotiate()
        if request.method not in ("GET", "POST"):
            raise HttpFailure(
                405, "use GET for queries or POST", codes.BAD_REQUEST, {"Allow": ALLOWED_METHODS}
            )
        token, principal = _authenticate()
        meter = _meter(principal)
        # The minimum on arrival: it bounds how many requests a caller sends, whatever they are.
        meter.charge(MIN_CHARGE)
        if principal.has(INTEGRATOR) and principal.client_id:
            note_use(_runtime(), principal.client_id)
        params = _read_params()
        operation = params.get("operationName") or "anonymous"
        status, body, operation = _run(params, token, principal, request_id, media, meter)
    except HttpFailure as failure:
        status, body = failure.status, error_body(failure.message, failure.code)
        response = _respond(status, body, media, request_id, meter)
        response.headers.update(failure.headers)
        _observe(operation, started, body)
        return response
    _observe(operation, started, body)
    return _respond(status, body, media, request_id, meter)


class Meter:
    """What one request costs: the caller's budget and the measured cost of its operation,
    shown in every answer (`extensions.cost`, the RateLimit-* headers)."""

    def __init__(self, budget: Budget, max_cost: int) -> None:
        self.budget, self.max_cost = budget, max_cost
        self.requested: int | None = None

    def charge(self, amount: int) -> None:
        """Charge the budget; 429 RATE_LIMITED when it cannot hold `amount`."""
        state = self.budget.charge(amount)
        if state is not None and not state.charged:
            raise HttpFailure(
                429,
                f"this request costs {amount} more than the {state.remaining} left of your "
                f"budget of {state.limit} a minute; it comes back in {state.reset} s",
                codes.RATE_LIMITED,
                {"Retry-After": str(state.reset)},
            )

    def headers(self) -> dict[str, str]:
        return self.budget.state.headers() if self.budget.state else {}

    def extension(self) -> dict[str, Any] | None:
        if self.requested is None:
            return None
        state = self.budget.state
        return {
            "requested": self.requested,
            "limit": self.max_cost,
            "remaining": state.remaining if state else None,
        }


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


# Dates and dataclasses as `str` gives them, like anything else a value may hold that JSON
# has no type for (orjson would spell them its own way).
_AS_STR = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _answer_json(body: dict) -> bytes:
    """The answer as compact UTF-8 JSON, as every GraphQL server answers. orjson: the
    standard library's encoder took a tenth of a 50-resident page's CPU (97 us against 5)."""
    try:
        return orjson.dumps(body, default=str, option=_AS_STR)
    except orjson.JSONEncodeError:
        # An error message may quote the request's own text, lone surrogates and all, and
        # a number may be past 64 bits: the standard library's escaped JSON holds both.
        return json.dumps(body, default=str, separators=(",", ":")).encode()


def _respond(
    status: int, body: dict, media: str, request_id: str, meter: Meter | None = None
) -> Response:
    cost = meter.extension() if meter else None
    if cost is not None:
        body = {**body, "extensions": {**body.get("extensions", {}), "cost": cost}}
    # Every answer passes here, so every top-level error is given in the caller's language.
    localize_errors(body, request_language())
    response = Response(
        _answer_json(body),
        status=status,
        content_type=f"{media}; charset=utf-8",
    )
    response.headers["X-Request-Id"] = request_id
    if meter is not None:
        response.headers.update(meter.headers())
    response.vary.add("Accept-Language")
    return response


def _authenticate() -> tuple[str, Principal]:
    """The bearer token and its principal (checked through `Runtime.callers`)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpFailure(
            401,
            "missing bearer token",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink"'},
        )
    try:
        return token, _runtime().callers.principal(token)
    except InvalidToken as exc:
        raise HttpFailure(
            401,
            f"invalid token: {exc}",
            codes.UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="villagelink", error="invalid_token"'},
        ) from exc


def _meter(principal: Principal) -> Meter:
    """The request's meter on its caller's budget (per client and subject)."""
    settings = _runtime().settings
    caller = f"{principal.client_id or '-'}:{principal.sub}"
    return Meter(
        Budget(
            _runtime().redis, _runtime().allowances, caller, settings.rate_limit_cost_per_minute
        ),
        settings.max_query_cost,
    )


def _read_params() -> dict[str, Any]:
    if request.method == "GET":
        params: dict[str, Any] = {
            "query": request.args.get("query"),
            "operationName": request.args.get("operationName") or None,
        }
        for name in ("variables", "extensions"):
            raw = request.args.get(name)
            params[name] = read_json(raw, name) if raw else None
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
    for name in ("variables", "extensions"):
        if params.get(name) is not None and not isinstance(params[name], dict):
            raise HttpFailure(400, f"{name} must be a JSON object", codes.BAD_REQUEST)
    # A persisted document's hash may stand for the text (graphql/core/persisted.py).
    by_hash = params.get("query") is None and "persistedQuery" in (params.get("extensions") or {})
    if not by_hash and (not isinstance(params.get("query"), str) or not params["query"].strip()):
        raise HttpFailure(400, "query must be a non-empty string", codes.BAD_REQUEST)
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


# Nineteen digits in a row may be an integer past 64 bits, which orjson would read as a
# float: the standard library reads such a text instead. Found by making every digit a
# 0 and looking for nineteen of them, both in C (a regular expression took longer than
# the standard library's reading).
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def _parsed_json(raw: str | bytes) -> Any:
    """The value of a JSON text, read by orjson, in a third of the standard library's
    time (a device platform's batch of 1,000 readings: 1.3 ms). Whatever orjson refuses
    (lone surrogates, a byte order mark, `NaN`, `1e400`, nesting past 1,024) or might
    read otherwise (long integers) is read by the standard library, as before, so the
    value and the refusals are the standard library's."""
    data = raw.encode() if isinstance(raw, str) else raw
    if _LONG_DIGITS not in data.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)


def read_json(raw: str | bytes, what: str) -> Any:
    """JSON as RFC 8259 has it: numbers finite (no `1e400`, `NaN` or `Infinity`), text
    valid UTF-8, nesting at most MAX_JSON_DEPTH. Anything else is 400 BAD_REQUEST."""
    try:
        value = _parsed_json(raw)
    except RecursionError as exc:
        raise HttpFailure(400, f"{what} is nested too deeply", codes.BAD_REQUEST) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise HttpFailure(400, f"{what} is not JSON", codes.BAD_REQUEST) from exc
    if json_depth(value) > MAX_JSON_DEPTH:
        raise HttpFailure(
            400, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels", codes.BAD_REQUEST
        )
    return value


def _request_error_status(media: str) -> int:
    # The spec's media type reports request errors as 400; legacy JSON keeps 200.
    return 400 if media == GRAPHQL_RESPONSE else 200


# The consoles send the same few hundred documents over and over: each is parsed and
# checked by GraphQL's standard rules once per process, not on every request (they were
# a fifth to a third of a request's Python time). None of them depends on the variables,
# and graphql-core never changes a parsed document. The limits (which do depend on the
# variables) still run first on every request, and so does the check of the variables' text.
DOCUMENT_CACHE_SIZE = 1024


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def parsed(text: str) -> DocumentNode:
    """`text` parsed (a syntax error is raised, and not kept)."""
    return parse(text)


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def standard_problems(text: str) -> tuple[GraphQLError, ...]:
    """What GraphQL's standard validation rules find in the document `text`."""
    return tuple(validate(executable_schema(), parsed(text), specified_rules))


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def literal_problems(text: str) -> tuple[GraphQLError, ...]:
    """The string literals of the document `text` that PostgreSQL could not store."""
    return tuple(validate(executable_schema(), parsed(text), [StorableLiterals]))


def choose_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _document(params: dict, principal: Principal) -> tuple[str | None, str | None]:
    """The text to run (None when the hash sent alone names no known document) and the hash
    to remember it by once it validates (automatic persisted queries)."""
    runtime = _runtime()
    try:
        sha256 = persisted.requested_hash(params.get("extensions"))
    except persisted.Refused as exc:
        raise HttpFailure(400, str(exc), codes.BAD_REQUEST) from exc
    only_registered = principal.client_id in runtime.settings.persisted_documents_only_clients
    text = params.get("query")
    if text is not None:
        if sha256 is not None and document_hash(text) != sha256:
            raise HttpFailure(
                400, "persistedQuery.sha256Hash is not the SHA-256 of the query", codes.BAD_REQUEST
            )
        if not only_registered:
            return text, sha256
        sha256 = document_hash(text)
    assert sha256 is not None  # _read_params asks for a query or a hash
    known = persisted.find(runtime.redis, runtime.db, sha256, registered_only=only_registered)
    if only_registered and (known is None or not known.registered):
        raise HttpFailure(
            403,
            f"client {principal.client_id} may run registered documents only "
            "(villagelink documents register)",
            codes.FORBIDDEN,
        )
    return (known.document if known else None), None


def _run(
    params: dict, token: str, principal: Principal, request_id: str, media: str, meter: Meter
) -> tuple[int, dict, str]:
    runtime = _runtime()
    settings = runtime.settings
    text, remember_as = _document(params, principal)
    if text is None:
        return (
            _request_error_status(media),
            error_body(persisted.NOT_FOUND_MESSAGE, persisted.PERSISTED_QUERY_NOT_FOUND),
            params.get("operationName") or "anonymous",
        )
    try:
        document = parsed(text)
    except GraphQLError as exc:
        return (
            _request_error_status(media),
            {"errors": [format_error(exc, codes.GRAPHQL_PARSE_FAILED, request_id)]},
            "invalid",
        )
    operation = choose_operation(document, params.get("operationName"))
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
    checked = check_limits(
        schema,
        document,
        params.get("variables"),
        max_depth=settings.max_query_depth,
        max_cost=settings.max_query_cost,
        max_page_size=settings.max_page_size,
    )
    meter.requested = (
        checked.costs.get(operation, 0) if operation else max(checked.costs.values(), default=0)
    )
    problems = (
        checked.errors
        or list(standard_problems(text))
        or [*refused_variables(params.get("variables")), *literal_problems(text)]
    )
    if problems:
        return (
            _request_error_status(media),
            {
                "errors": [
                    format_error(p, codes.GRAPHQL_VALIDATION_FAILED, request_id) for p in problems
                ]
            },
            name,
        )
    if remember_as is not None:
        persisted.remember(runtime.redis, remember_as, text)
    # The rest of the operation's cost, before it runs.
    if meter.requested > MIN_CHARGE:
        meter.charge(meter.requested - MIN_CHARGE)

    read_only = operation is not None and operation.operation == OperationType.QUERY
    kept_reach = runtime.callers if read_only or _runs_again_safely(schema, operation) else None

    def run_once(callers: Callers | None) -> tuple[RequestContext, ExecutionResult]:
        context = RequestContext(
            runtime, principal, request_id, read_only=read_only, callers=callers, token=token
        )
        result = execute(
            schema,
            document,
            context_value=context,
            variable_values=params.get("variables"),
            operation_name=params.get("operationName"),
            middleware=[Deadline(settings.request_deadline_ms)],
            executor_class=GatewayExecutor,
        )
        return context, result

    # A query, or a mutation that can run again (the device platforms' ingest), takes
    # the caller's reach as kept with their token; if the access epoch moved meanwhile,
    # it runs once more on the reach read afresh (it wrote nothing).
    context, result = run_once(kept_reach)
    if context.reach_is_stale():
        context.finish(commit=False)
        runtime.callers.forget_reaches()
        context, result = run_once(None)
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
        body["errors"] = [format_error(e, codes.BAD_USER_INPUT, request_id) for e in errors]
    executed = not errors or any(e.path is not None for e in errors)
    if executed:
        body["data"] = result.data
    status = 200 if "data" in body else _request_error_status(media)
    return status, body, name


def _runs_again_safely(schema: GraphQLSchema, operation: OperationDefinitionNode | None) -> bool:
    """Whether a mutation's every field is one `runs_again_safely` marks: named plainly,
    without fragments, so that what is run is what is looked at here."""
    if operation is None or operation.operation != OperationType.MUTATION:
        return False
    fields = schema.mutation_type.fields if schema.mutation_type else {}
    for selection in operation.selection_set.selections:
        field = fields.get(selection.name.value) if isinstance(selection, FieldNode) else None
        if field is None or not getattr(field.resolve, "runs_again_safely", False):
            return False
    return True


REFUSED_BY_DATABASE = "输入的值超出允许的范围或格式，未保存任何更改"


def _refused_by_database(error: Exception | None) -> bool:
    """Whether PostgreSQL refused a value (out of range, malformed, against a check
    constraint): SQLAlchemy wraps the driver's error as `orig`."""
    cause = getattr(error, "orig", None)
    return isinstance(cause, (psycopg.errors.DataError, psycopg.errors.CheckViolation))


def _expected(error: GraphQLError) -> bool:
    return isinstance(error.original_error, ApiError) or error.original_error is None


def format_error(error: GraphQLError, default_code: str, request_id: str) -> dict:
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
