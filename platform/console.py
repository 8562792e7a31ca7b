"""The consoles' build (console/, built by Vite) served by the gateway.

`/console/...` is the staff console, `/h5/...` the residents' app and `/graphiql/...` the API
explorer, all single-page apps: a
path that names no file of the build gets the app's index.html and the app's router takes it
from there. Hashed assets under `/assets/` are cached for a year; the HTML never, so a new
build is picked up at the next load. Every page carries a Content-Security-Policy that lets
scripts come from this origin only and lets the page talk to exactly the servers it needs
(this gateway, the identity provider, the live process, the object store).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, jsonify, redirect, request, send_file
from werkzeug.security import safe_join
from werkzeug.wrappers import Response as BaseResponse

from villagelink.platform.identity.dev_issuer import CONSOLE_CLIENT, RESIDENTS_CLIENT
from villagelink.platform.settings import Settings

# Hashed file names change with their content: a cached copy can never be stale.
IMMUTABLE = "public, max-age=31536000, immutable"

# The compressed copies Vite writes beside a file (`<name>.br`, `<name>.gz`), the browser's
# preferred first when it weighs both alike: Brotli's are the smaller.
PRECOMPRESSED = (("br", ".br"), ("gzip", ".gz"))

NOT_BUILT_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>控制台尚未构建</title></head>
<body>
<h1>控制台尚未构建</h1>
<p>没有找到控制台的构建结果（{dist}）。请在项目目录中运行 <code>make run</code>，
它会先构建控制台（需要 Node.js 20 或更高版本），再启动服务。</p>
<p lang="en">The console has not been built. Run <code>make run</code> in the project directory
(it needs Node.js 20 or later).</p>
</body></html>
"""


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, as CSP source lists and browsers name origins."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """The policy of every console page. Element Plus and Vant set inline styles, hence
    style-src 'unsafe-inline'; scripts have no such exception."""
    issuer = origin(settings.issuer)
    # Presigned URLs name MinIO itself when it is configured, this gateway otherwise.
    store = [origin(settings.s3_endpoint)] if settings.s3_endpoint else []
    connect = ["'self'", issuer, origin(settings.live_public_url), *store]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "connect-src": connect,
        "img-src": ["'self'", "data:", "blob:", *store],
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", issuer],
    }
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives.items()
    )


def send_build_file(found: Path, max_age: int | None = None) -> Response:
    """`found` as the smallest of its precompressed copies the request accepts (with its
    own Content-Encoding and the file's own type), or as it is. A file that has copies
    varies by Accept-Encoding, so shared caches keep one answer per encoding."""
    accepts = request.accept_encodings
    copies = {
        coding: copy
        for coding, suffix in PRECOMPRESSED
        if (copy := found.with_name(found.name + suffix)).is_file()
    }
    # The copy of the highest quality the request gives; among equals the first (smaller).
    coding = max((c for c in copies if accepts[c] > 0), key=lambda c: accepts[c], default=None)
    mimetype = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    response = send_file(
        copies[coding] if coding else found, mimetype=mimetype, conditional=True, max_age=max_age
    )
    if coding:
        response.headers["Content-Encoding"] = coding
    if copies:
        response.vary.add("Accept-Encoding")
    return response


def blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("console", __name__)
    dist = settings.console_dist
    policy = content_security_policy(settings)

    def secured(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def not_built() -> Response:
        response = Response(
            NOT_BUILT_PAGE.format(dist=dist), status=503, content_type="text/html; charset=utf-8"
        )
        response.headers["Retry-After"] = "60"
        response.cache_control.no_store = True
        return secured(response)

    def file_in(folder: Path, path: str) -> Path | None:
        """The regular file `path` names under `folder`, or None; None too for any path
        that would leave `folder` (`..`, absolute, NUL), whatever its encoding was."""
        if "\x00" in path:
            return None
        joined = safe_join(str(folder), path)
        if joined is None:
            return None
        found = Path(joined)
        return found if found.is_file() else None

    def page(index: Path, path: str, folder: Path) -> Response:
        """The build's file at `path` if there is one, else the app's index.html."""
        if not index.is_file():
            return not_built()
        if ".." in path.replace("\\", "/").split("/") or "\x00" in path:
            abort(404)
        found = file_in(folder, path) if path else None
        target = found or index
        response = send_build_file(target, max_age=0)
        if target.suffix == ".html":
            response.headers["Cache-Control"] = "no-cache"
        return secured(response)

    @bp.get("/")
    def root() -> BaseResponse:
        return redirect("/console/", code=302)

    @bp.get("/console")
    @bp.get("/console/")
    @bp.get("/console/<path:path>")
    def console(path: str = "") -> Response:
        return page(dist / "index.html", path, dist)

    @bp.get("/h5")
    @bp.get("/h5/")
    @bp.get("/h5/<path:path>")
    def residents(path: str = "") -> Response:
        return page(dist / "h5" / "index.html", path, dist / "h5")

    @bp.get("/graphiql")
    @bp.get("/graphiql/")
    @bp.get("/graphiql/<path:path>")
    def explorer(path: str = "") -> Response:
        return page(dist / "graphiql" / "index.html", path, dist / "graphiql")

    @bp.get("/assets/<path:path>")
    def assets(path: str) -> Response:
        if not (dist / "index.html").is_file():
            return not_built()
        found = file_in(dist / "assets", path)
        if found is None:
            abort(404)
        response = send_build_file(found)
        response.headers["Cache-Control"] = IMMUTABLE
        return secured(response)

    @bp.get("/console/config.json")
    def config() -> Response:
        """What the console needs to know before it can sign anybody in."""
        response = jsonify(
            issuer=settings.issuer,
            consoleClientId=CONSOLE_CLIENT,
            residentsClientId=RESIDENTS_CLIENT,
            graphqlUrl="/graphql",
            liveUrl=settings.live_public_url.rstrip("/") + "/graphql/stream",
        )
        response.cache_control.no_store = True
        return secured(response)

    return bp
