"""Tables of the one table (一张表: 一表采集、动态录入、多头应用) in one village.

An import job is one uploaded sheet of residents worked through by a background
job: its progress, its counts and its per-row report live here, so a console
can follow it while it runs and a retried job resumes where the last one
stopped. An export is an .xlsx written to the object store for one caller;
the row is how its object is found and removed once the download URL expires.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

# The village tables' own column helpers, so that every domain's tables look alike.
from villagelink.tenants.models import id_column, metadata, one_of, timestamps

QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
IMPORT_STATUSES = (QUEUED, RUNNING, FINISHED, FAILED)


def _count(name: str) -> Column:
    return Column(name, Integer, nullable=False, server_default="0")


import_jobs = Table(
    "import_jobs",
    metadata,
    id_column(),
    # The sheet, moved out of its upload URL's reach when the job was created,
    # and its name as uploaded; empty only inside the transaction that creates the job.
    Column("object_key", Text, unique=True),
    Column("filename", Text),
    Column("status", Text, nullable=False, server_default=QUEUED),
    # Data rows of the sheet (blank rows left out); known once the job has read it.
    Column("total_rows", Integer),
    # Rows done, in sheet order: a retried job skips this many.
    _count("processed_rows"),
    _count("imported"),
    _count("updated"),
    _count("unchanged"),
    _count("failed"),
    # [{"row": 3, "column": "身份证号码", "message": "身份证号码校验位不正确"}, ...]
    Column("report", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Who started it: the job writes (and audits) in their name.
    Column("created_by", Text, nullable=False),
    Column("created_by_name", Text),
    Column("created_by_roles", ARRAY(Text), nullable=False),
    Column("request_id", Text),
    *timestamps(),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(one_of("status", IMPORT_STATUSES), name="import_jobs_status"),
    Index("import_jobs_status", "status"),
)

resident_exports = Table(
    "resident_exports",
    metadata,
    id_column(),
    Column("object_key", Text, nullable=False, unique=True),
    Column("row_count", Integer, nullable=False),
    Column("unmasked", Boolean, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # When its download URL stops working; the object goes after that.
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("resident_exports_expires_at", "expires_at"),
)
