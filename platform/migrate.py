"""Alembic, run from code: one history for the platform schema, one for villages.

The tenant history is applied to each village schema under that village's role,
with its version table inside the schema, so every village migrates (and
resumes after a failure) on its own.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from villagelink.platform.db import Database, hold_lock
from villagelink.platform.models import SCHEMA

PLATFORM_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(script_location: Path, connection: Connection, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


# A history may have several heads: each domain of the village schema grows on
# a branch of its own (branch_labels), so that domains can gain tables
# independently. Revisions are therefore reported as the sorted set of heads.


def head_revision(script_location: Path) -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))


def current_revision(connection: Connection, schema: str) -> str:
    ctx = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return ",".join(sorted(ctx.get_current_heads()))


def upgrade_platform(db: Database) -> None:
    """Bring the platform schema to head (idempotent)."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.exec_driver_sql(f"SET LOCAL search_path TO {SCHEMA}")
        # One migrator at a time: gunicorn workers and CLI calls may race at start.
        hold_lock(conn, "villagelink.platform")
        command.upgrade(alembic_config(PLATFORM_SCRIPTS, conn, SCHEMA), "heads")
