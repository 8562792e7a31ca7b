"""Every path of the app answers errors in JSON, shaped like a GraphQL response.

Flask's own error pages are HTML; an integrator's client, the consoles and the
monitoring all read JSON, so 404s, 405s, 413s and any 500 come as
`{"errors": [{"message": ..., "extensions": {"code": ...}}]}` instead.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from villagelink.graphql.core import errors as codes
from villagelink.graphql.core.errors import error_body
from villagelink.graphql.core.messages import localize_errors, request_language

log = logging.getLogger(__name__)

_CODES = {401: codes.UNAUTHENTICATED, 403: codes.FORBIDDEN, 404: codes.NOT_FOUND}
# Werkzeug's own descriptions are paragraphs written for browsers; these say the same in a
# line, and the catalogue has them in Chinese too.
_MESSAGES = {
    400: "bad request",
    401: "authentication required",
    403: "access to this path is not allowed",
    404: "no such path",
    405: "method not allowed",
    406: "cannot answer in an accepted media type",
    413: "request body too large",
    415: "unsupported media type",
}


def json_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        code, message = codes.INTERNAL, codes.INTERNAL_MESSAGE
    else:
        code = _CODES.get(status, codes.BAD_REQUEST)
        message = error.description or error.name
        if message == type(error).description:
            message = _MESSAGES.get(status, error.name)
    body = localize_errors(error_body(message, code), request_language())
    response = error.get_response()
    response.set_data(json.dumps(body, ensure_ascii=False))
    response.vary.add("Accept-Language")
    response.content_type = "application/json; charset=utf-8"
    return response


def _unexpected(error: Exception) -> Response:
    log.error("%s %s failed", request.method, request.path, exc_info=error)
    return json_error(InternalServerError())


def register_json_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, json_error)
    app.register_error_handler(Exception, _unexpected)
