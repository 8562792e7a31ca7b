"""Cross-origin requests: same-origin unless settings name the origins allowed.

Browsers send a page's `Origin` with every cross-origin request and ask first
(a preflight OPTIONS) before a POST of JSON or one with `Authorization`. Only an
origin in `CORS_ALLOWED_ORIGINS` is answered with CORS headers; for any other, none
are sent and the browser keeps the answer from the page. Tokens travel in the
`Authorization` header, never in cookies, so credentials are not allowed.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, X-Request-Id"
# The response headers a page may read (besides the CORS-safelisted ones).
EXPOSED_HEADERS = (
    "X-Request-Id, Retry-After, WWW-Authenticate, RateLimit-Limit, RateLimit-Remaining, "
    "RateLimit-Reset"
)
# How long a browser may reuse a preflight's answer.
PREFLIGHT_MAX_AGE_SECONDS = 600


def register_cors(app: Flask, allowed_origins: frozenset[str]) -> None:
    def allowed(origin: str | None) -> bool:
        return origin is not None and (origin in allowed_origins or "*" in allowed_origins)

    @app.before_request
    def _preflight() -> Response | None:
        origin = request.headers.get("Origin")
        is_preflight = request.method == "OPTIONS" and request.headers.get(
            "Access-Control-Request-Method"
        )
        if not is_preflight or not allowed(origin):
            return None  # not a preflight, or not ours to allow: Flask answers as usual
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return response

    @app.after_request
    def _allow_origin(response: Response) -> Response:
        # The answer differs by Origin: caches must keep one per origin.
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
