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

log = logging.getLogger(__name__)

_CODES = {401: codes.UNAUTHENTICATED, 403: codes.FORBIDDEN, 404: codes.NOT_FOUND}


def json_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        code, message = codes.INTERNAL, codes.INTERNAL_MESSAGE
    else:
        code, message = _CODES.get(status, codes.BAD_REQUEST), error.description or error.name
    response = error.get_response()
    response.set_data(json.dumps(error_body(message, code), ensure_ascii=False))
    response.content_type = "application/json; charset=utf-8"
    return response


def _unexpected(error: Exception) -> Response:
    log.error("%s %s failed", request.method, request.path, exc_info=error)
    return json_error(InternalServerError())


def register_json_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, json_error)
    app.register_error_handler(Exception, _unexpected)
