"""Errors the API shows: a stable `extensions.code`, a message, never a stack trace or SQL."""

from __future__ import annotations

from graphql import GraphQLError

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
RATE_LIMITED = "RATE_LIMITED"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
INTERNAL = "INTERNAL"
# Request-level failures of the GraphQL-over-HTTP layer.
BAD_REQUEST = "BAD_REQUEST"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

INTERNAL_MESSAGE = "Internal error; it has been logged with the request id."


class ApiError(GraphQLError):
    """An expected failure of one field, shown to the client as it is."""

    code = INTERNAL

    def __init__(self, message: str, **extensions):
        super().__init__(message, extensions={"code": self.code, **extensions})


class Forbidden(ApiError):
    code = FORBIDDEN


class NotFound(ApiError):
    code = NOT_FOUND

    def __init__(self, what: str = "object"):
        super().__init__(f"{what} not found")


class BadUserInput(ApiError):
    code = BAD_USER_INPUT


class DeadlineExceeded(ApiError):
    code = DEADLINE_EXCEEDED


def error_body(message: str, code: str, **extensions) -> dict:
    """A GraphQL-shaped response body for failures before execution (auth, HTTP)."""
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
