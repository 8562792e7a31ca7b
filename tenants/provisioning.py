"""Provisioning villages: role, schema, grants, migrations, platform row.

Every step is idempotent, so running `tenants create` twice, or again after a
failure half-way, converges on the same village.
"""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from alembic import command
from sqlalchemy import Connection, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from tqdm import tqdm

from villagelink.platform import models as pm
from villagelink.platform.db import (
    REGIONS_ROLE,
    VILLAGES_ROLE,
    Database,
    hold_lock,
    region_role,
    tenant_role,
    validate_slug,
)
from villagelink.platform.linkage.tables import EXCHANGE, cursors, records
from villagelink.platform.migrate import alembic_config, current_revision, head_revision
from villagelink.storage.store import ObjectStore

TENANT_SCRIPTS = Path(__file__).parent / "migrations"


# What a village role may do outside its schema, through VILLAGES_ROLE. Audit entries go
# to the platform's log in the same transaction as the write they record: insert only,
# and row-level security keeps them to the role's own village.
PLATFORM_GRANTS = (
    ("USAGE", f"SCHEMA {pm.SCHEMA}"),
    ("INSERT", f"TABLE {pm.SCHEMA}.audit_log"),
)
# Village and region roles (through VILLAGES_ROLE and REGIONS_ROLE) read the shared copies
# (and the log of what crossed) that row-level security lets them see; only the sync jobs
# write there.
EXCHANGE_GRANTS = (
    ("USAGE", f"SCHEMA {EXCHANGE}"),
    ("SELECT", f"TABLE {EXCHANGE}.records, {EXCHANGE}.log"),
)
MEMBER_GRANTS = {VILLAGES_ROLE: PLATFORM_GRANTS + EXCHANGE_GRANTS, REGIONS_ROLE: EXCHANGE_GRANTS}


def ensure_member_roles(conn: Connection) -> None:
    """The two roles village and region roles belong to, with what they may do outside
    their schemas (platform migration 0005; roles are the cluster's, grants the database's)."""
    for member_role, grants in MEMBER_GRANTS.items():
        ensure_role(conn, member_role, switch=False)
        for privilege, target in grants:
            conn.exec_driver_sql(f'GRANT {privilege} ON {target} TO "{member_role}"')


class ProvisioningError(Exception):
    """A village could not be provisioned as asked; the message is for the operator."""


@dataclass(frozen=True)
class Village:
    slug: str
    name: str
    region_id: str
    status: str


def ensure_region(db: Database, region_id: str, name: str) -> None:
    validate_slug(region_id)
    with db.platform() as conn:
        conn.execute(
            insert(pm.regions)
            .values(id=region_id, name=name)
            .on_conflict_do_update(index_elements=["id"], set_={"name": name})
        )
        ensure_region_role(conn, region_id)


def ensure_region_role(conn: Connection, region_id: str) -> None:
    """The NOLOGIN role coordinators' reads switch to: it sees its region's shared
    copies in the exchange schema and nothing of any village schema."""
    role = region_role(region_id)
    ensure_role(conn, role)
    conn.exec_driver_sql(f'GRANT "{REGIONS_ROLE}" TO "{role}"')


def create_village(
    db: Database, slug: str, name: str, region_id: str, store: ObjectStore | None = None
) -> Village:
    """Create (or bring up to date) the village `slug` in `region_id`, and its private
    bucket in `store` when one is given."""
    with db.platform() as conn:
        village = _register(conn, slug, name, region_id)
    migrate_village(db, slug)
    if store is not None:
        store.ensure_bucket(slug)
    return village


def _register(conn: Connection, slug: str, name: str, region_id: str) -> Village:
    """The village's role, its (possibly still empty) schema and its platform row."""
    role = tenant_role(slug)
    if not name.strip():
        raise ProvisioningError("a village needs a name (中文名)")
    if conn.execute(select(pm.regions.c.id).where(pm.regions.c.id == region_id)).first() is None:
        raise ProvisioningError(f"region {region_id!r} does not exist")
    # Roles are cluster-wide; serialise their creation across concurrent provisioners.
    hold_lock(conn, role)
    _ensure_role_and_schema(conn, role)
    conn.execute(
        insert(pm.tenants)
        .values(slug=slug, name=name, region_id=region_id)
        .on_conflict_do_update(
            index_elements=["slug"],
            set_={"name": name, "region_id": region_id, "updated_at": text("now()")},
        )
    )
    return Village(slug=slug, name=name, region_id=region_id, status="active")


@dataclass(frozen=True)
class VillageTemplate:
    """What the tenant history builds in a village schema, as one SQL script: a new
    village replays it in one round trip instead of running every migration again.

    Made by running the real history (`create_village`) on a scratch village and
    dumping its schema with `pg_dump` (tables, functions, triggers, the reference
    rows and the version table the migrations wrote), then dropping that village.
    The test suite makes hundreds of villages this way; whatever the history does
    is still what they get, and `create_village` remains the one path that migrates.

    `fill` writes rows into the scratch village before the dump (the tests' populated
    village): replaying them costs a fraction of writing them again row by row. The
    scratch village's slug in those rows (grid codes, account subjects) becomes the
    new village's.
    """

    script: str  # the scratch village's schema name and slug replaced by the placeholders

    SCHEMA_PLACEHOLDER: ClassVar[str] = "__village_schema__"
    SLUG_PLACEHOLDER: ClassVar[str] = "__village_slug__"
    SCRATCH_PREFIX: ClassVar[str] = "template_"

    @classmethod
    def capture(
        cls,
        db: Database,
        region_id: str,
        pg_dump: Path,
        fill: Callable[[Connection, str], object] | None = None,
    ) -> VillageTemplate:
        # A name of its own, so that two captures in one database do not meet.
        slug = f"{cls.SCRATCH_PREFIX}{uuid.uuid4().hex[:8]}"
        role = tenant_role(slug)
        create_village(db, slug, "模板村", region_id)
        try:
            if fill is not None:
                with db.tenant(slug) as conn:
                    fill(conn, slug)
            # Replayed under the new village's role, which then owns what it creates.
            dump = dump_village_schema(db, slug, pg_dump, "--no-owner")
        finally:
            drop_village(db, slug)
        script = _replayable(dump, role, cls.SCHEMA_PLACEHOLDER)
        return cls(re.sub(rf"\b{re.escape(slug)}\b", cls.SLUG_PLACEHOLDER, script))

    def create_village(self, db: Database, slug: str, name: str, region_id: str) -> Village:
        """A new village at the template's revision; its own role, schema and platform row."""
        role = tenant_role(slug)
        with db.platform() as conn:
            village = _register(conn, slug, name, region_id)
            conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
            # Straight to psycopg, without parameters: one simple-protocol round trip,
            # and a '%' in a function body is not taken for a placeholder.
            conn.connection.driver_connection.execute(
                self.script.replace(self.SCHEMA_PLACEHOLDER, role).replace(
                    self.SLUG_PLACEHOLDER, slug
                )
            )
            conn.exec_driver_sql("SET LOCAL ROLE NONE")
        return village


def dump_village_schema(db: Database, slug: str, pg_dump: Path, *options: str) -> str:
    """The village's schema as `pg_dump` writes it, rows as INSERTs."""
    role = tenant_role(slug)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    # Read as the village role: the application role does not inherit its rights.
    command = [str(pg_dump), "--dbname", url, "--schema", role, "--role", role, "--inserts"]
    return subprocess.run([*command, *options], capture_output=True, text=True, check=True).stdout


def _replayable(dump: str, schema: str, placeholder: str) -> str:
    """pg_dump's script without what would not replay inside a transaction of ours:
    psql meta-commands, session-wide SETs (they would outlive the transaction on a
    pooled connection; every name in the dump is schema-qualified) and the schema's
    own CREATE (the schema exists already, made by the provisioning steps)."""
    kept = [
        line
        for line in dump.splitlines()
        if not line.startswith(("\\", "--", "SET ", "SELECT pg_catalog.set_config("))
        and line != f"CREATE SCHEMA {schema};"
    ]
    return re.sub(rf"\b{re.escape(schema)}\b", placeholder, "\n".join(kept))


def _ensure_role_and_schema(conn: Connection, role: str) -> None:
    ensure_role(conn, role)
    # A new schema grants nothing to PUBLIC: only its owner, the village role, may use it.
    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{role}" AUTHORIZATION "{role}"')
    conn.exec_driver_sql(f'GRANT "{VILLAGES_ROLE}" TO "{role}"')


def ensure_role(conn: Connection, role: str, *, switch: bool = True) -> None:
    """A NOLOGIN role; one the application may switch to (village or region) unless
    `switch` is false."""
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if not exists:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
    if not switch:
        return
    # The application may become the village role (SET ROLE) but does not
    # inherit its rights: without SET LOCAL ROLE it cannot read village data.
    version = conn.execute(text("SHOW server_version_num")).scalar_one()
    if int(version) >= 160000:
        conn.exec_driver_sql(f'GRANT "{role}" TO CURRENT_USER WITH INHERIT FALSE, SET TRUE')
    else:
        conn.exec_driver_sql(f'GRANT "{role}" TO CURRENT_USER')


def migrate_village(db: Database, slug: str) -> str:
    """Apply the tenant history to one village under its own role; returns the new revision."""
    role = tenant_role(slug)
    with db.tenant(slug) as conn:
        command.upgrade(alembic_config(TENANT_SCRIPTS, conn, role), "heads")
        return current_revision(conn, role)


def village_revision(db: Database, slug: str) -> str:
    with db.tenant(slug) as conn:
        return current_revision(conn, tenant_role(slug))


def tenant_head() -> str:
    return head_revision(TENANT_SCRIPTS)


def list_villages(db: Database) -> list[Village]:
    with db.platform() as conn:
        rows = conn.execute(
            select(
                pm.tenants.c.slug, pm.tenants.c.name, pm.tenants.c.region_id, pm.tenants.c.status
            ).order_by(pm.tenants.c.slug)
        ).all()
    return [Village(*row) for row in rows]


@dataclass
class MigrationFailure:
    slug: str
    error: str


def migrate_villages(
    db: Database,
    slugs: Iterable[str],
    *,
    jobs: int = 4,
    on_done: Callable[[str], None] | None = None,
) -> list[MigrationFailure]:
    """Migrate many villages, `jobs` at a time. A failure in one does not stop the
    others; each village keeps its own version, so a rerun resumes where it failed.

    Parallel runs use processes: Alembic keeps its migration context in module
    globals, so two migrations in threads of one process would trip over each other.
    """
    slugs = list(slugs)
    failures: list[MigrationFailure] = []

    def finished(slug: str, error: str | None) -> None:
        if error is not None:
            failures.append(MigrationFailure(slug, error))
        if on_done:
            on_done(slug)

    if jobs <= 1 or len(slugs) <= 1:
        for slug in slugs:
            finished(*_migrate_one(db, slug))
        return failures
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_migrate_in_worker, db.url, slug) for slug in slugs]
        for future in as_completed(futures):
            finished(*future.result())
    return failures


def migrate_all_villages(db: Database, *, jobs: int = 4) -> tuple[int, list[MigrationFailure]]:
    """Migrate every village with a progress bar; returns how many and which failed."""
    slugs = [v.slug for v in list_villages(db)]
    with tqdm(total=len(slugs), desc="迁移村库 migrating villages", unit="village") as bar:
        failures = migrate_villages(db, slugs, jobs=jobs, on_done=lambda _slug: bar.update())
    return len(slugs), failures


def _migrate_one(db: Database, slug: str) -> tuple[str, str | None]:
    try:
        migrate_village(db, slug)
    except Exception as exc:
        return slug, f"{type(exc).__name__}: {exc}"
    return slug, None


_worker_databases: dict[str, Database] = {}


def _migrate_in_worker(url: str, slug: str) -> tuple[str, str | None]:
    db = _worker_databases.get(url)
    if db is None:
        db = _worker_databases[url] = Database(url, statement_timeout_ms=0, pool_size=1)
    return _migrate_one(db, slug)


def drop_village(db: Database, slug: str) -> None:
    """Remove a village's schema, role and platform rows. Irreversible."""
    role = tenant_role(slug)
    with db.platform() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).first()
        if exists:
            # As the role itself (the application holds SET but not INHERIT on it):
            # drops the schema with everything in it and revokes the role's grants.
            conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql("SET LOCAL ROLE NONE")
        # Its shared copies go with it; the exchange log keeps what once crossed.
        conn.execute(
            records.delete().where(or_(records.c.origin == slug, records.c.audience == slug))
        )
        conn.execute(cursors.delete().where(cursors.c.village == slug))
        conn.execute(pm.tenants.delete().where(pm.tenants.c.slug == slug))
    if exists:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
