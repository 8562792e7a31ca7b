"""The configured object store: MinIO when S3_ENDPOINT is set, the local disk otherwise."""

from __future__ import annotations

from functools import cache

from flask import Flask

from villagelink.platform.settings import Settings
from villagelink.storage.local_backend import LocalStore
from villagelink.storage.local_backend import blueprint as local_blueprint
from villagelink.storage.minio_backend import MinioStore
from villagelink.storage.store import ObjectStore


@cache
def object_store(settings: Settings) -> ObjectStore:
    """One store per settings and process: the MinIO client keeps a connection pool,
    and both remember what they need not ask again (buckets seen, the secret)."""
    if settings.s3_endpoint:
        if not (settings.s3_access_key and settings.s3_secret_key):
            raise ValueError("S3_ENDPOINT is set: S3_ACCESS_KEY and S3_SECRET_KEY are needed too")
        return MinioStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            region=settings.s3_region,
            bucket_prefix=settings.s3_bucket_prefix,
        )
    return LocalStore(
        root=settings.var_dir / "objects",
        secret_path=settings.var_dir / "object-store" / "signing-key",
        public_url=settings.public_url,
    )


def register_object_endpoints(app: Flask, settings: Settings) -> None:
    """The local backend's presigned URLs point at this application; MinIO's at MinIO."""
    store = object_store(settings)
    if isinstance(store, LocalStore):
        app.register_blueprint(local_blueprint(store))
