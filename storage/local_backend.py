"""The local-disk backend of `make run`: objects as files, presigned URLs as HMAC-signed links.

Files live under `var/objects/<village>/<key>`. A presigned URL points at this
application's `/objects/<village>/<key>` and carries an expiry and an HMAC of
the method, village, key, expiry and whatever else it fixes (the upload's size
bound, the download's type and name). The village is inside the signed text,
so a URL for one village reaches nothing of another, and a changed parameter
breaks the signature. The signing secret is made on first use and kept in a
file only the owner may read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, abort, request
from werkzeug.wsgi import FileWrapper

from villagelink.platform.db import InvalidSlug, validate_slug
from villagelink.storage.store import (
    InvalidKey,
    ObjectInfo,
    UploadTicket,
    content_disposition,
    validate_key,
)

URL_PREFIX = "/objects"
_CHUNK = 64 * 1024


class LocalStore:
    def __init__(self, root: Path, secret_path: Path, public_url: str):
        self.root = root
        self.secret_path = secret_path
        self.public_url = public_url.rstrip("/")
        self._secret: bytes | None = None

    # -- the interface ---------------------------------------------------------

    def ensure_bucket(self, village: str) -> None:
        self._village_dir(village).mkdir(mode=0o700, parents=True, exist_ok=True)

    def presigned_put(
        self, village: str, key: str, content_type: str, expires: timedelta, max_bytes: int
    ) -> UploadTicket:
        expires_at = datetime.now(UTC) + expires
        url = self._signed_url("PUT", village, key, expires_at, {"max": str(max_bytes)})
        return UploadTicket(
            url=url, method="PUT", expires_at=expires_at, headers={"Content-Type": content_type}
        )

    def presigned_get(
        self,
        village: str,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        fixed = {}
        if content_type:
            fixed["type"] = content_type
        if filename:
            fixed["name"] = filename
        return self._signed_url("GET", village, key, datetime.now(UTC) + expires, fixed)

    def stat(self, village: str, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(size=self.path(village, key).stat().st_size)
        except FileNotFoundError:
            return None

    def read_head(self, village: str, key: str, n: int) -> bytes:
        with self.path(village, key).open("rb") as f:
            return f.read(n)

    def read(self, village: str, key: str) -> bytes:
        return self.path(village, key).read_bytes()

    def put(self, village: str, key: str, data: bytes, content_type: str) -> None:
        self.write(self.path(village, key), [data])

    def move(self, village: str, source: str, target: str) -> bool:
        target_path = self.path(village, target)
        target_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.replace(self.path(village, source), target_path)
        except FileNotFoundError:
            return False
        return True

    def remove(self, village: str, key: str) -> None:
        self.path(village, key).unlink(missing_ok=True)

    # -- files -------------------------------------------------------------------

    def _village_dir(self, village: str) -> Path:
        return self.root / validate_slug(village)

    def path(self, village: str, key: str) -> Path:
        return self._village_dir(village).joinpath(*validate_key(key).split("/"))

    def write(self, path: Path, chunks: Iterable[bytes]) -> None:
        """Write to a temporary file beside `path` and move it in place: a reader
        never sees half an object, and a failed upload leaves none."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # -- signatures --------------------------------------------------------------

    def _signing_secret(self) -> bytes:
        if self._secret is None:
            path = self.secret_path
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # O_EXCL: of two processes starting at once, one writes and both read it.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            secret = path.read_text().strip()
            if len(secret) < 64:
                raise RuntimeError(f"{path} holds no signing secret; remove it to make a new one")
            self._secret = secret.encode()
        return self._secret

    def signature(
        self, method: str, village: str, key: str, expires: int, fixed: dict[str, str]
    ) -> str:
        # Village and key hold no newline (validated); the fixed values may (a file
        # name), so they are percent-encoded and cannot pose as another field.
        text = "\n".join([method, village, key, str(expires), urlencode(sorted(fixed.items()))])
        digest = hmac.new(self._signing_secret(), text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _signed_url(
        self, method: str, village: str, key: str, expires_at: datetime, fixed: dict[str, str]
    ) -> str:
        validate_slug(village)
        validate_key(key)
        expires = int(expires_at.timestamp())
        query = {
            **fixed,
            "expires": str(expires),
            "signature": self.signature(method, village, key, expires, fixed),
        }
        return f"{self.public_url}{URL_PREFIX}/{village}/{quote(key)}?{urlencode(query)}"

    def check(self, method: str, village: str, key: str, args) -> dict[str, str]:
        """The signed parameters of a request to `/objects/...`; aborts with 403 (as S3
        does) when the signature does not match or the URL has expired."""
        fixed = {k: args[k] for k in ("max", "type", "name") if k in args}
        try:
            expires = int(args.get("expires", ""))
        except ValueError:
            abort(403, "the URL carries no expiry")
        expected = self.signature(method, village, key, expires, fixed)
        if not hmac.compare_digest(expected, args.get("signature", "")):
            abort(403, "the signature does not match this URL")
        if time.time() > expires:
            abort(403, "the URL has expired")
        return fixed


def blueprint(store: LocalStore) -> Blueprint:
    """`/objects/<village>/<key>`: the endpoint the local backend's presigned URLs name."""
    bp = Blueprint("objects", __name__, url_prefix=URL_PREFIX)

    @bp.route("/<village>/<path:key>", methods=["GET", "PUT"])
    def serve(village: str, key: str) -> Response:
        try:
            path = store.path(village, key)
        except (InvalidSlug, InvalidKey):
            abort(404)
        fixed = store.check(request.method, village, key, request.args)
        if request.method == "PUT":
            return _receive(store, path, int(fixed["max"]))
        return _send(path, fixed)

    return bp


def _receive(store: LocalStore, path: Path, max_bytes: int) -> Response:
    # The application's request limit is the GraphQL body's; uploads get the bound
    # signed into their URL, and werkzeug refuses more (413) even without a length.
    request.max_content_length = max_bytes
    stream = request.stream
    store.write(path, iter(lambda: stream.read(_CHUNK), b""))
    return Response(status=200)


def _send(path: Path, fixed: dict[str, str]) -> Response:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        abort(404)
    response = Response(
        FileWrapper(f, _CHUNK),
        mimetype=fixed.get("type", "application/octet-stream"),
        direct_passthrough=True,
    )
    response.content_length = os.fstat(f.fileno()).st_size
    if "name" in fixed:
        response.headers["Content-Disposition"] = content_disposition(fixed["name"])
    # Uploaded bytes are served from the application's own origin: the browser must
    # neither guess another type nor run anything they contain.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
