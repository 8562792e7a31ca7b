"""Tenant isolation enforced by PostgreSQL itself, provisioning, migrations and the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from villagelink.platform.cli import main
from villagelink.platform.db import InvalidSlug, tenant_role
from villagelink.tenants import provisioning

from .conftest import TEST_REGION, new_village_slug


def test_a_village_session_cannot_read_another_village(db, village, populated_village):
    other = tenant_role(populated_village.slug)
    with (
        pytest.raises(ProgrammingError, match="permission denied for schema"),
        db.tenant(village.slug) as conn,
    ):
        conn.execute(text(f"SELECT * FROM {other}.residents")).all()


def test_a_village_session_runs_under_the_village_role(db, village):
    with db.tenant(village.slug) as conn:
        role, path = conn.execute(text("SELECT current_user, current_setting('search_path')")).one()
    assert role == tenant_role(village.slug)
    assert path == tenant_role(village.slug)


def test_the_application_role_cannot_read_villages_without_set_role(db, populated_village):
    with pytest.raises(ProgrammingError, match="permission denied"), db.platform() as conn:
        conn.execute(text(f"SELECT * FROM {tenant_role(populated_village.slug)}.residents"))


def test_set_local_role_ends_with_the_transaction(db, village):
    with db.engine.connect() as conn:
        with conn.begin():
            conn.exec_driver_sql(f'SET LOCAL ROLE "{tenant_role(village.slug)}"')
        assert conn.execute(text("SELECT current_user")).scalar() != tenant_role(village.slug)


def test_a_village_cannot_write_audit_entries_for_another(db, village, populated_village):
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        db.tenant(village.slug) as conn,
    ):
        conn.execute(
            text(
                "INSERT INTO platform.audit_log (village, actor_sub, action) "
                "VALUES (:v, 'x', 'forged')"
            ),
            {"v": populated_village.slug},
        )


def test_a_village_cannot_read_the_audit_log(db, village):
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        db.tenant(village.slug) as conn,
    ):
        conn.execute(text("SELECT * FROM platform.audit_log")).all()


def test_schema_and_tables_belong_to_the_village_role(db, village):
    role = tenant_role(village.slug)
    with db.platform() as conn:
        owner = conn.execute(
            text("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"),
            {"s": role},
        ).scalar()
        tables = dict(
            conn.execute(
                text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = :s"),
                {"s": role},
            ).all()
        )
        login = conn.execute(
            text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).scalar()
    assert owner == role and login is False
    assert {"residents", "households", "grids", "alembic_version"} <= set(tables)
    assert set(tables.values()) == {role}


def test_provisioning_is_idempotent(db, village):
    again = provisioning.create_village(db, village.slug, "测试村（改名）", TEST_REGION)
    assert again.name == "测试村（改名）"
    assert provisioning.village_revision(db, village.slug) == provisioning.tenant_head()
    assert [v.slug for v in provisioning.list_villages(db)].count(village.slug) == 1


def test_provisioning_refuses_bad_input(db):
    with pytest.raises(InvalidSlug):
        provisioning.create_village(db, "Bad-Slug", "坏村", TEST_REGION)
    with pytest.raises(provisioning.ProvisioningError, match="region"):
        provisioning.create_village(db, new_village_slug(), "无片区村", "no_such_region")


def cli(settings, *args):
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.mark.every_village
def test_cli_create_list_migrate_drop(settings, db):
    slug = new_village_slug()
    created = cli(settings, "tenants", "create", slug, "--name", "新河村", "--region", TEST_REGION)
    assert created.exit_code == 0, created.output
    assert (
        cli(
            settings, "tenants", "create", slug, "--name", "新河村", "--region", TEST_REGION
        ).exit_code
        == 0
    )
    listed = cli(settings, "tenants", "list")
    assert slug in listed.output and "新河村" in listed.output
    migrated = cli(settings, "tenants", "migrate", "--all", "--jobs", "3")
    assert migrated.exit_code == 0, migrated.output
    assert "villages at head" in migrated.output

    refused = cli(settings, "tenants", "drop", slug)
    assert refused.exit_code != 0 and "refusing" in refused.output
    assert cli(settings, "tenants", "drop", slug, "--confirm", "other").exit_code != 0
    assert slug in {v.slug for v in provisioning.list_villages(db)}

    dropped = cli(settings, "tenants", "drop", slug, "--confirm", slug)
    assert dropped.exit_code == 0, dropped.output
    assert slug not in {v.slug for v in provisioning.list_villages(db)}
    with db.platform() as conn:
        assert (
            conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": tenant_role(slug)}
            ).first()
            is None
        )


def test_cli_creates_many_villages_at_once(settings, db):
    prefix = new_village_slug()
    created = cli(
        settings,
        "tenants",
        "create",
        prefix,
        "--name",
        "基准村",
        "--region",
        TEST_REGION,
        "--count",
        "3",
    )
    assert created.exit_code == 0, created.output
    made = {v.slug: v.name for v in provisioning.list_villages(db) if v.slug.startswith(prefix)}
    assert made == {f"{prefix}_000{n}": f"基准村{n}" for n in (1, 2, 3)}
    for slug in made:
        provisioning.drop_village(db, slug)


def test_cli_reports_bad_input_without_a_traceback(settings):
    result = cli(settings, "tenants", "create", "X", "--name", "坏", "--region", TEST_REGION)
    assert result.exit_code == 1 and "slug" in result.output
    assert "Traceback" not in result.output


def test_migrate_villages_reports_failures_per_village(db, village):
    failures = provisioning.migrate_villages(db, [village.slug, "missing_village"], jobs=2)
    assert [f.slug for f in failures] == ["missing_village"]
