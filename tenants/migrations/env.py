"""Alembic environment of one village schema; run through villagelink.tenants.provisioning.

The connection arrives with `SET LOCAL ROLE` and `search_path` already set to
the village, so the unqualified tables of the migrations land in its schema,
owned by its role, and the version table sits beside them.
"""

from alembic import context

from villagelink.tenants.models import metadata

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=metadata,
    version_table_schema=config.attributes["schema"],
)
with context.begin_transaction():
    context.run_migrations()
