"""The MinIO (S3 API) backend: one private bucket per village.

Buckets are created without a policy, so nothing in them is public: every
read and write is either the platform's own (with its keys) or a presigned URL
for one object and one method. The bucket is part of the signed request, so a
URL signed for village A's bucket is refused if pointed at village B's.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from villagelink.storage.store import ObjectInfo, UploadTicket, content_disposition, validate_key

# Codes S3 answers for an object that is not there (or a bucket not yet made).
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}


def bucket_name(prefix: str, village: str) -> str:
    """S3 bucket names allow no '_': slugs use it, so it becomes '-'. Slugs never
    contain '-', so no two villages share a bucket."""
    return f"{prefix}{village}".replace("_", "-")


class MinioStore:
    def __init__(
        self, endpoint: str, access_key: str, secret_key: str, *, region: str, bucket_prefix: str
    ):
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"S3_ENDPOINT must be an http(s) URL, not {endpoint!r}")
        self.bucket_prefix = bucket_prefix
        self.client = Minio(
            url.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=url.scheme == "https",
            # Given here, the client signs URLs offline instead of asking the
            # server for each bucket's location first.
            region=region,
            http_client=_http_client(),
        )
        # Buckets this process has seen exist; the check is then free afterwards.
        self._buckets: set[str] = set()

    def bucket(self, village: str) -> str:
        return bucket_name(self.bucket_prefix, village)

    def ensure_bucket(self, village: str) -> None:
        bucket = self.bucket(village)
        if bucket in self._buckets:
            return
        if not self.client.bucket_exists(bucket):
            try:
                self.client.make_bucket(bucket)
            except S3Error as exc:
                # Another provisioner made it in between: that is what we wanted.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._buckets.add(bucket)

    def presigned_put(
        self, village: str, key: str, content_type: str, expires: timedelta, max_bytes: int
    ) -> UploadTicket:
        # An S3 presigned PUT cannot bound the body; the attach step checks the
        # stored size against the declared one and the purpose's limit.
        url = self.client.presigned_put_object(self.bucket(village), validate_key(key), expires)
        return UploadTicket(
            url=url,
            method="PUT",
            expires_at=datetime.now(UTC) + expires,
            headers={"Content-Type": content_type},
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
        # Response overrides are signed with the URL: a holder cannot change how
        # the object is served.
        overrides = {}
        if content_type:
            overrides["response-content-type"] = content_type
        if filename:
            overrides["response-content-disposition"] = content_disposition(filename)
        return self.client.presigned_get_object(
            self.bucket(village), validate_key(key), expires, response_headers=overrides or None
        )

    def stat(self, village: str, key: str) -> ObjectInfo | None:
        try:
            found = self.client.stat_object(self.bucket(village), validate_key(key))
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return ObjectInfo(size=found.size)

    def read_head(self, village: str, key: str, n: int) -> bytes:
        return self._get(village, key, length=n)

    def read(self, village: str, key: str) -> bytes:
        return self._get(village, key, length=0)

    def _get(self, village: str, key: str, *, length: int) -> bytes:
        response = self.client.get_object(self.bucket(village), validate_key(key), length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def put(self, village: str, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            self.bucket(village),
            validate_key(key),
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    def move(self, village: str, source: str, target: str) -> bool:
        # S3 has no rename: a server-side copy (the bytes never pass through here),
        # then the source goes.
        bucket = self.bucket(village)
        try:
            self.client.copy_object(
                bucket, validate_key(target), CopySource(bucket, validate_key(source))
            )
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            raise
        self.client.remove_object(bucket, source)
        return True

    def remove(self, village: str, key: str) -> None:
        # S3 answers a delete of a missing key with success.
        try:
            self.client.remove_object(self.bucket(village), validate_key(key))
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise


def _http_client() -> urllib3.PoolManager:
    """minio's own default waits five minutes to connect; a request thread must
    fail fast when the store is down, and large reads still get a minute."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
