"""access epoch: a counter that moves with every change to what callers can reach

Revision ID: ac0001
Revises: 0001
Create Date: 2026-12-06

The gateway keeps each token's reach (platform/access.py) and villages between requests
(platform/identity/callers.py) and checks this counter in each request's own transaction.
Triggers bump it in the same transaction as any change to villages, regions or API client
grants, whoever makes it (an action, a migration, psql): a cached reach can be out of date
only until that change commits, as a reach read at the start of the request can be.
"""

from alembic import op

revision = "ac0001"
down_revision = "0001"
branch_labels = ("access_epoch",)
depends_on = None

# Statement-level: a bulk change is one bump. The API client's own use (last_used_at,
# written once a minute) changes no one's reach and leaves the counter alone.
WATCHED = {
    "tenants": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "regions": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "api_clients": "INSERT OR UPDATE OF villages, scopes, enabled OR DELETE OR TRUNCATE",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE platform.access_epoch (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            value bigint NOT NULL
        );
        -- Starts at the clock in microseconds, not 1: a platform schema made again (a test
        -- database, a reinstall) cannot meet a running process's kept epoch by chance.
        INSERT INTO platform.access_epoch (value)
            VALUES ((extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
        CREATE FUNCTION platform.bump_access_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE platform.access_epoch SET value = value + 1;
            RETURN NULL;
        END $$;
        """
    )
    for table, events in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_access_epoch AFTER {events} ON platform.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION platform.bump_access_epoch()"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_access_epoch ON platform.{table}")
    op.execute("DROP FUNCTION platform.bump_access_epoch()")
    op.execute("DROP TABLE platform.access_epoch")
