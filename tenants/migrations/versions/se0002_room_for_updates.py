"""sensing: the rows every report updates keep room on their page for their next version

A device's last-seen time and a wearer's latest vitals are updated by every batch a
device platform sends. Packed full, a page has no room for a row's new version, so most
updates went to another page and wrote an entry in each of the table's indexes (six for
devices): an ingest bench batch of a thousand readings updated 678 of each. At half full
(fillfactor 50) the new version stays on its page, a heap-only update that touches no
index: the share of such updates went from 42% to 88% for devices (bench/README.md). The
tables are small (a row per device, a row per wearer); pages written from now on keep
the room, and a page now packed gains it as its rows move.

Revision ID: se0002
Revises: se0001
Create Date: 2026-12-07
"""

from alembic import op

revision = "se0002"
down_revision = "se0001"
branch_labels = ("room_for_updates",)
depends_on = None

TABLES = ("devices", "latest_vitals")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
