"""Alembic environment of the platform schema; run through villagelink.platform.migrate."""

from alembic import context

from villagelink.platform.models import metadata

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=metadata,
    version_table_schema=config.attributes["schema"],
    include_schemas=False,
)
with context.begin_transaction():
    context.run_migrations()
