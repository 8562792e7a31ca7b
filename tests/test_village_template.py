"""The village template the suite clones its villages from is what the migrations make."""

from __future__ import annotations

import re

from villagelink.platform.db import Database, tenant_role
from villagelink.platform.embedded import postgres_bin
from villagelink.tenants import provisioning

from .conftest import TEST_REGION, new_village, new_village_slug


def schema_dump(db: Database, slug: str) -> str:
    """The village's schema with its owners, its own name and the times its reference
    rows were written blanked out (a clone's rows carry the template's)."""
    role = tenant_role(slug)
    dump = provisioning.dump_village_schema(db, slug, postgres_bin() / "pg_dump")
    # pg_dump 17.6+ brackets its output with a random \restrict key.
    lines = [line for line in dump.splitlines() if not line.startswith("\\")]
    text = "\n".join(lines).replace(role, "VILLAGE")
    return re.sub(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00'", "'WRITTEN_AT'", text)


def test_a_cloned_village_is_the_one_the_migrations_make(db):
    migrated = provisioning.create_village(db, new_village_slug(), "迁移村", TEST_REGION)
    cloned = new_village(db, "克隆村")
    assert provisioning.village_revision(db, cloned.slug) == provisioning.tenant_head()
    expected = schema_dump(db, migrated.slug)
    # Tables, functions, triggers, constraints, owners, grants, reference rows, versions.
    assert "CREATE TABLE VILLAGE.residents" in expected
    assert "INSERT INTO VILLAGE.alembic_version" in expected
    assert "OWNER TO VILLAGE" in expected
    assert schema_dump(db, cloned.slug) == expected
    assert {v.slug: v.name for v in provisioning.list_villages(db)}[cloned.slug] == "克隆村"


def test_the_template_leaves_no_village_behind(db):
    new_village(db)
    scratch = provisioning.VillageTemplate.SCRATCH_PREFIX
    assert not [v.slug for v in provisioning.list_villages(db) if v.slug.startswith(scratch)]
