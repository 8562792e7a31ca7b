"""Persisted documents, in the shape of Apollo's automatic persisted queries (APQ).

A client sends `extensions: {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}` with
or without the document's text. Without it, the gateway runs the document it knows by that
hash, or answers PERSISTED_QUERY_NOT_FOUND, and the client sends the hash again with the
text; a text whose SHA-256 is not the hash is refused. Known documents are of two kinds:

- remembered: any text a caller sent with its hash and that passed validation, kept in
  Redis for APQ_TTL (a cache: losing it costs one resend);
- registered: the consoles' documents, in platform.persisted_documents
  (`villagelink documents register`), cached in Redis. Callers whose client id (`azp`) is
  in PERSISTED_DOCUMENTS_ONLY_CLIENTS may run these only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis

from villagelink.platform.db import Database
from villagelink.platform.persisted_documents import registered

log = logging.getLogger(__name__)

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
# Apollo's clients recognise the error by this message as well as by the code.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
VERSION = 1
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
APQ_TTL = timedelta(days=7)
REGISTERED_CACHE_TTL = timedelta(days=1)


class Refused(ValueError):
    """`extensions.persistedQuery` that cannot be read: the message says why."""


def requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The hash `extensions.persistedQuery` asks for; None when there is none."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != VERSION:
        raise Refused(f"persistedQuery must be {{version: {VERSION}, sha256Hash}}")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise Refused("persistedQuery.sha256Hash must be 64 lower-case hex digits")
    return sha256


@dataclass(frozen=True)
class Known:
    document: str
    registered: bool


def _remembered_key(sha256: str) -> str:
    return f"villagelink:apq:{sha256}"


def _registered_key(sha256: str) -> str:
    return f"villagelink:pd:{sha256}"


def find(client: redis.Redis, db: Database, sha256: str, *, registered_only: bool) -> Known | None:
    """The document known by `sha256`: from Redis, else the registered set (then cached).
    A remembered document is enough unless `registered_only`. Redis down: the registered
    set alone."""
    try:
        cached_registered, cached = client.mget(_registered_key(sha256), _remembered_key(sha256))
    except redis.RedisError as error:
        log.warning("persisted documents: Redis unavailable: %s", error)
        cached_registered = cached = None
    if cached_registered is not None:
        return Known(_text(cached_registered), registered=True)
    if cached is not None and not registered_only:
        return Known(_text(cached), registered=False)
    with db.platform() as conn:
        document = registered(conn, sha256)
    if document is None:
        return None
    _store(client, _registered_key(sha256), document, REGISTERED_CACHE_TTL)
    return Known(document, registered=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def remember(client: redis.Redis, sha256: str, document: str) -> None:
    """Keep a document a caller sent with its hash, for the next request that sends the
    hash alone."""
    _store(client, _remembered_key(sha256), document, APQ_TTL)


def _store(client: redis.Redis, key: str, document: str, ttl: timedelta) -> None:
    try:
        client.set(key, document, ex=ttl)
    except redis.RedisError as error:
        log.warning("persisted documents: Redis unavailable: %s", error)
