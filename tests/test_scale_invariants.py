"""What the scale-out plan (docs/scale-out.md) relies on, checked where it can be.

- No foreign key leaves a village schema: Citus places each village schema (a
  distributed schema) on one node, and a key into another schema could not follow it.
  Checked in the catalog of provisioned villages.
- No statement joins two village schemas. Checked by construction, in two halves: the
  code never names a village schema (tenant tables carry no schema; `search_path` is only
  ever set to one schema), and the catalog gives no role the statements run under rights
  on two village schemas (a village role has none on another village's schema, the login
  role none on any, a region role none on any), so such a join would fail rather than run.
- Every read of the exchange is bound to its audience: row-level security on every
  exchange table a village or region role may read, with policies keyed on the reading
  village (audience or origin) or region; and the API never reads the exchange as the
  application role, which the policies do not bind.
- PgBouncer in transaction mode: the gateway and the jobs connect through it, prepare no
  statement on the server and leave no session state behind a transaction.
"""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import text

from villagelink.platform import models as pm
from villagelink.platform.db import REGIONS_ROLE, VILLAGES_ROLE, Database, region_role, tenant_role
from villagelink.platform.linkage.tables import EXCHANGE, records
from villagelink.tenants import models as tenant_models
from villagelink.tenants import provisioning

from .conftest import new_village

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / folder for folder in ("platform", "tenants", "graphql", "jobs", "storage")]


def _sources(*folders: Path) -> list[Path]:
    return sorted(
        p for folder in folders for p in folder.rglob("*.py") if "migrations" not in p.parts
    )


@cache
def _parsed(path: Path) -> ast.Module:
    """Each source parsed once for the module's static checks."""
    return ast.parse(path.read_text())


# A region of this module's own: the copies written here show in no other test's region.
REGION = f"scaleinv{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def two_villages(db: Database) -> tuple[str, str]:
    provisioning.ensure_region(db, REGION, "规模测试片区")
    return new_village(db, "甲村", REGION).slug, new_village(db, "乙村", REGION).slug


# -- no foreign key leaves a village schema ----------------------------------------------------


def test_no_foreign_key_or_view_leaves_a_village_schema(db: Database, two_villages):
    with db.platform() as conn:
        inside, leaving = conn.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE src.relnamespace = dst.relnamespace),
                       array_agg(c.conname) FILTER (WHERE src.relnamespace <> dst.relnamespace)
                FROM pg_constraint c
                JOIN pg_class src ON src.oid = c.conrelid
                JOIN pg_class dst ON dst.oid = c.confrelid
                JOIN pg_namespace s ON s.oid = src.relnamespace
                JOIN pg_namespace d ON d.oid = dst.relnamespace
                WHERE c.contype = 'f'
                  AND (s.nspname LIKE 'vl\\_t\\_%' OR d.nspname LIKE 'vl\\_t\\_%')
                """
            )
        ).one()
        # Views and rules: what a village's relations are built on stays in its schema.
        views_leaving = conn.execute(
            text(
                """
                SELECT array_agg(DISTINCT obj.oid::regclass::text)
                FROM pg_depend dep
                JOIN pg_rewrite rw ON dep.classid = 'pg_rewrite'::regclass AND rw.oid = dep.objid
                JOIN pg_class obj ON obj.oid = rw.ev_class
                JOIN pg_class ref
                  ON dep.refclassid = 'pg_class'::regclass AND ref.oid = dep.refobjid
                JOIN pg_namespace n ON n.oid = obj.relnamespace
                WHERE n.nspname LIKE 'vl\\_t\\_%' AND ref.relnamespace <> obj.relnamespace
                """
            )
        ).scalar_one()
    # Each village schema holds keys of its own (households to grids, ...): the query sees them.
    assert inside > 0
    assert leaving is None, f"foreign keys across a village schema's edge: {leaving}"
    assert views_leaving is None, f"views built on another schema: {views_leaving}"


# -- no statement joins two village schemas ----------------------------------------------------


def test_the_code_never_names_a_village_schema():
    """Village tables resolve through `search_path`, set to exactly one schema; no code
    spells a village schema (only `tenant_role` makes one, from one slug)."""
    from villagelink.platform.app import create_app  # noqa: F401 - imports every table module

    assert tenant_models.metadata.tables, "the tenant tables were not imported"
    qualified = [t.fullname for t in tenant_models.metadata.tables.values() if t.schema]
    assert qualified == []
    settings = re.compile(r"search_path TO ([^;'\n]*)|set_config\('search_path', '([^']*)'")
    # A schema name, not the `vl_t_<slug>` of prose.
    village_schema = re.compile(r"\bvl_t_[a-z0-9]")
    spelled = []
    for path in _sources(*CODE):
        source = path.read_text()
        for match in settings.finditer(source):
            target = (match.group(1) or match.group(2)).strip().rstrip('")')
            if "," in target:
                spelled.append(f"{path.relative_to(ROOT)}: search_path TO {target}")
        for node in ast.walk(_parsed(path)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and village_schema.search(node.value)
            ):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert spelled == []


def test_no_role_reaches_two_village_schemas(db: Database, two_villages):
    first, second = (tenant_role(slug) for slug in two_villages)
    region = region_role(REGION)
    with db.platform() as conn:

        def may(role: str, schema: str) -> bool:
            return conn.execute(
                text("SELECT has_schema_privilege(:role, :schema, 'USAGE')"),
                {"role": role, "schema": schema},
            ).scalar_one()

        login = conn.execute(text("SELECT current_user")).scalar_one()
        assert may(first, first) and may(second, second)
        assert not may(first, second) and not may(second, first)
        assert not may(region, first) and not may(region, second)
        # PostgreSQL 16 and later: the login role may SET ROLE to a village role but does
        # not inherit its rights (older servers cannot grant SET without INHERIT).
        if int(conn.execute(text("SHOW server_version_num")).scalar_one()) >= 160000:
            assert not may(login, first) and not may(login, second)


def test_no_grant_outside_a_village_schema_names_a_village_or_region(db: Database, two_villages):
    """An object's grants are one catalog row of at most 8 KB: granted to each village
    role, they stopped fitting at about 2,100 villages and the next village could not be
    made. Village and region roles reach the platform and the exchange through their
    member roles, so those rows stay the same size whatever the villages."""
    with db.platform() as conn:
        named = conn.execute(
            text(
                """
                SELECT n.nspname || coalesce('.' || c.relname, ''), r.rolname
                FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid,
                     aclexplode(coalesce(c.relacl, n.nspacl)) a
                     JOIN pg_roles r ON r.oid = a.grantee
                WHERE n.nspname IN (:platform, :exchange)
                  AND (r.rolname LIKE 'vl\\_t\\_%' OR r.rolname LIKE 'vl\\_r\\_%')
                """
            ),
            {"platform": pm.SCHEMA, "exchange": EXCHANGE},
        ).all()
        members = dict(
            conn.execute(
                text(
                    """
                    SELECT r.rolname, g.rolname FROM pg_auth_members m
                    JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
                    WHERE r.rolname = ANY(:roles)
                    """
                ),
                {"roles": [*(tenant_role(s) for s in two_villages), region_role(REGION)]},
            ).all()
        )
    assert named == []
    assert members == {
        **{tenant_role(slug): VILLAGES_ROLE for slug in two_villages},
        region_role(REGION): REGIONS_ROLE,
    }


# -- every exchange read is bound to its audience --------------------------------------------


def test_row_level_security_binds_every_exchange_read(db: Database, two_villages):
    # Read from the tables' ACLs (linear in grants): asking has_table_privilege of every role
    # for every table grows with the villages a run has made, past the statement timeout.
    # ACL entries are the whole story because a village or region role is a member of its
    # member role only, itself a member of none (checked), and none owns an exchange table
    # (checked).
    with db.platform() as conn:
        readable = conn.execute(
            text(
                """
                SELECT c.relname, c.relrowsecurity
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = :schema AND c.relkind = 'r'
                  AND EXISTS (SELECT 1 FROM aclexplode(c.relacl) a
                              LEFT JOIN pg_roles r ON r.oid = a.grantee
                              WHERE a.privilege_type = 'SELECT'
                                AND (a.grantee = 0 OR r.rolname LIKE 'vl\\_%'))
                """
            ),
            {"schema": EXCHANGE},
        ).all()
        writers = conn.execute(
            text(
                """
                SELECT array_agg(DISTINCT coalesce(r.rolname, 'PUBLIC'))
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                     aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
                WHERE n.nspname = :schema AND c.relkind = 'r'
                  AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
                  AND (a.grantee = 0 OR r.rolname LIKE 'vl\\_%')
                """
            ),
            {"schema": EXCHANGE},
        ).scalar_one()
        inherited = conn.execute(
            text(
                """
                SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
                JOIN pg_roles g ON g.oid = m.roleid
                WHERE r.rolname LIKE 'vl\\_%'
                  AND NOT (r.rolname LIKE 'vl\\_t\\_%' AND g.rolname = :villages)
                  AND NOT (r.rolname LIKE 'vl\\_r\\_%' AND g.rolname = :regions)
                """
            ),
            {"villages": VILLAGES_ROLE, "regions": REGIONS_ROLE},
        ).scalar_one()
        owned = conn.execute(
            text(
                """
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_roles r ON r.oid = c.relowner
                WHERE n.nspname = :schema AND r.rolname LIKE 'vl\\_%'
                """
            ),
            {"schema": EXCHANGE},
        ).scalar_one()
        policies = conn.execute(
            text("SELECT tablename, permissive, cmd, qual FROM pg_policies WHERE schemaname = :s"),
            {"s": EXCHANGE},
        ).all()
    assert {name for name, _ in readable} >= {"records", "log"}
    assert [name for name, secured in readable if not secured] == []
    assert writers is None, f"village or region roles that write the exchange: {writers}"
    assert (inherited, owned) == (0, 0)
    by_table: dict[str, list] = {}
    for table, permissive, command, qual in policies:
        by_table.setdefault(table, []).append(qual)
        assert permissive == "PERMISSIVE" and command == "SELECT", (table, command)
        keyed_on_village = "current_village()" in qual and "audience" in qual
        keyed_on_region = "current_region()" in qual and "region_id" in qual
        assert keyed_on_village or keyed_on_region, f"{table}: {qual}"
    assert {name for name, _ in readable} <= set(by_table)

    # And as it reads: a village sees the copies addressed to it and its own, no other.
    first, second = two_villages
    third = new_village(db, "丙村", REGION).slug
    rows = [
        {"origin": origin, "audience": audience, "origin_id": n}
        for n, (origin, audience) in enumerate(
            [(second, first), (second, third), (third, second), (first, third)], start=1
        )
    ]
    with db.platform() as conn:
        conn.execute(
            records.insert(),
            [
                {
                    **row,
                    "record_type": "alert_broadcast",
                    "region_id": REGION,
                    "agreement_ids": [],
                    "version": 1,
                    "payload": {},
                    "payload_hash": "-",
                    "committed_at": datetime.now(UTC),
                }
                for row in rows
            ],
        )
    with db.tenant(first) as conn:
        seen = conn.execute(
            text("SELECT origin, audience FROM exchange.records WHERE origin_id <= 4")
        ).all()
    assert sorted(seen) == sorted([(second, first), (first, third)])


def test_the_api_never_reads_the_exchange_as_the_application_role():
    """The application role owns the exchange tables, so the policies do not bind it: only
    the sync (platform/linkage/sync.py) and provisioning use it there. Every function of the
    API and the villages' code that names the shared copies reads them through a village's
    or a region's connection, never the platform's."""
    unbound = []
    for path in _sources(ROOT / "graphql", ROOT / "tenants"):
        tree = _parsed(path)
        imports_copies = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "villagelink.platform.linkage.tables"
            and any(alias.name == "records" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not imports_copies or path.name == "provisioning.py":
            continue
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            names = {n.id for n in ast.walk(func) if isinstance(n, ast.Name)}
            attributes = {n.attr for n in ast.walk(func) if isinstance(n, ast.Attribute)}
            if "records" in names and attributes & {"platform", "platform_rows", "engine"}:
                unbound.append(f"{path.relative_to(ROOT)}: {func.name}")
    assert unbound == []


# -- PgBouncer in transaction mode -------------------------------------------------------------


def test_the_gateway_and_the_jobs_go_through_pgbouncer(settings, app, db: Database, two_villages):
    gateway = app.extensions["villagelink"].db
    assert gateway.pooled and settings.database_url.endswith("?pgbouncer=true")
    assert not db.pooled and db.engine.url.port != gateway.engine.url.port
    slug = two_villages[0]
    count = text("SELECT count(*) FROM residents")
    # psycopg prepares a statement on the server once it ran five times on a connection:
    # behind PgBouncer the next transaction may meet another server connection.
    for _ in range(8):
        with gateway.tenant(slug) as conn:
            conn.execute(count).scalar_one()
    with gateway.tenant(slug) as conn:
        conn.execute(count).scalar_one()
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        timeout = conn.execute(
            text("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        ).scalar_one()
    assert prepared == 0
    assert int(timeout) == settings.statement_timeout_ms
    # What the village transaction set ended with it (SET LOCAL only).
    with gateway.platform() as conn:
        role, path = conn.execute(text("SELECT current_user, current_setting('search_path')")).one()
    assert not role.startswith("vl_") and "vl_t_" not in path
