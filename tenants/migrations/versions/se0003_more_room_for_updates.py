"""sensing: devices and latest vitals keep seven tenths of each page free, not half

At half full (se0002) 12-15% of the devices' updates and 20-27% of latest vitals' still
went to another page, and each such device update wrote an entry in all six of its
indexes: under concurrent batches a row's older versions stay on the page until no
running transaction may still see them, and four batches in flight fill half a page
with them. At fillfactor 30, 97-99% of both tables' updates are heap-only in the ingest
bench at concurrency 4 (bench/README.md), for about 1.5 times the pages: a row per device
and a row per wearer, under a megabyte for a village of a thousand devices.

Revision ID: se0003
Revises: se0002
Create Date: 2026-12-07
"""

from alembic import op

revision = "se0003"
down_revision = "se0002"
branch_labels = None
depends_on = None

TABLES = ("devices", "latest_vitals")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 30)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")
