"""The registered GraphQL documents (platform.persisted_documents): what the consoles' builds
send by hash alone, and all that PERSISTED_DOCUMENTS_ONLY_CLIENTS' callers may run.

Registering is `villagelink documents register <file.graphql...>`; reading is the gateway's,
through graphql/core/persisted.py. A document is kept as its exact text, keyed by the
SHA-256 of it (lower-case hex), the hash clients compute.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import CheckConstraint, Column, Connection, DateTime, Table, Text, func, select
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.models import metadata

persisted_documents = Table(
    "persisted_documents",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("document", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="persisted_documents_sha256"),
)


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def register(conn: Connection, documents: list[str]) -> list[tuple[str, bool]]:
    """Register each document (a second registration changes nothing); its hash and whether
    it is new, in the order given."""
    outcome = []
    for document in documents:
        sha256 = document_hash(document)
        added = conn.execute(
            insert(persisted_documents)
            .values(sha256=sha256, document=document)
            .on_conflict_do_nothing()
            .returning(persisted_documents.c.sha256)
        ).first()
        outcome.append((sha256, added is not None))
    return outcome


def registered(conn: Connection, sha256: str) -> str | None:
    return conn.execute(
        select(persisted_documents.c.document).where(persisted_documents.c.sha256 == sha256)
    ).scalar()
