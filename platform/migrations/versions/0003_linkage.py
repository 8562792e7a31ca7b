"""linkage: agreements, the exchange schema and its row-level security

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00

The exchange schema is written by the application role only (the sync jobs). A
village role reads the copies meant for it and the ones it published; a region role
(`vl_r_<region>`, which coordinators' requests switch to) reads its region's. The
policies compare against `current_user`, which `SET LOCAL ROLE` sets: a resolver
that forgets a filter still cannot see another village's share.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("proposer", sa.Text(), nullable=False),
        sa.Column("region_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("record_types", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("fields", postgresql.JSONB(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.Text(), server_default="proposed", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("scope IN ('neighbour', 'region')", name="agreements_scope"),
        sa.CheckConstraint(
            "state IN ('proposed', 'active', 'declined', 'revoked', 'expired')",
            name="agreements_state",
        ),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until > valid_from", name="agreements_validity"
        ),
        sa.CheckConstraint("cardinality(record_types) > 0", name="agreements_record_types"),
        sa.ForeignKeyConstraint(["proposer"], ["platform.tenants.slug"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["region_id"], ["platform.regions.id"]),
        sa.PrimaryKeyConstraint("id"),
        schema="platform",
    )
    op.create_table(
        "agreement_parties",
        sa.Column("agreement_id", sa.BigInteger(), nullable=False),
        sa.Column("village", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'accepted', 'declined', 'left')",
            name="agreement_parties_state",
        ),
        sa.ForeignKeyConstraint(["agreement_id"], ["platform.agreements.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["village"], ["platform.tenants.slug"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agreement_id", "village"),
        schema="platform",
    )
    op.create_index(
        "agreement_parties_village",
        "agreement_parties",
        ["village", "state"],
        schema="platform",
    )
    op.create_table(
        "agreement_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("agreement_id", sa.BigInteger(), nullable=False),
        sa.Column("village", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column(
            "details", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["agreement_id"], ["platform.agreements.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="platform",
    )
    op.create_index(
        "agreement_events_agreement",
        "agreement_events",
        ["agreement_id", "id"],
        schema="platform",
    )

    op.execute("CREATE SCHEMA IF NOT EXISTS exchange")
    op.create_table(
        "records",
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("record_type", sa.Text(), nullable=False),
        sa.Column("origin_id", sa.BigInteger(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("region_id", sa.Text(), nullable=False),
        sa.Column("agreement_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("origin", "record_type", "origin_id", "audience"),
        schema="exchange",
    )
    op.create_index(
        "records_audience",
        "records",
        ["audience", "record_type", "committed_at"],
        schema="exchange",
    )
    op.create_index(
        "records_region", "records", ["region_id", "record_type", "committed_at"], schema="exchange"
    )
    op.create_table(
        "log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("region_id", sa.Text(), nullable=False),
        sa.Column("record_type", sa.Text(), nullable=False),
        sa.Column("origin_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("agreement_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lag_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint("action IN ('publish', 'withdraw')", name="log_action"),
        sa.PrimaryKeyConstraint("id"),
        schema="exchange",
    )
    op.create_index("log_origin", "log", ["origin", "id"], schema="exchange")
    op.create_index("log_audience", "log", ["audience", "id"], schema="exchange")
    op.create_index("log_time", "log", ["occurred_at"], schema="exchange")
    op.create_table(
        "cursors",
        sa.Column("village", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gap_at", sa.BigInteger(), nullable=True),
        sa.Column("gap_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("village"),
        schema="exchange",
    )

    # Who is reading: the village or region whose role the transaction switched to.
    op.execute(
        """
        CREATE FUNCTION exchange.current_village() RETURNS text LANGUAGE sql STABLE AS $$
          SELECT CASE WHEN current_user LIKE 'vl\\_t\\_%' THEN substr(current_user, 6) END
        $$;
        CREATE FUNCTION exchange.current_region() RETURNS text LANGUAGE sql STABLE AS $$
          SELECT CASE WHEN current_user LIKE 'vl\\_r\\_%' THEN substr(current_user, 6) END
        $$;
        """
    )
    for table, village_rule in (
        ("records", "audience = exchange.current_village() OR origin = exchange.current_village()"),
        ("log", "audience = exchange.current_village() OR origin = exchange.current_village()"),
    ):
        op.execute(f"ALTER TABLE exchange.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY village_reads ON exchange.{table} FOR SELECT USING ({village_rule})"
        )
        op.execute(
            f"CREATE POLICY region_reads ON exchange.{table} FOR SELECT "
            "USING (region_id = exchange.current_region())"
        )
    # Roles that exist already get what provisioning grants new ones.
    op.execute(
        """
        DO $$
        DECLARE r text;
        BEGIN
          FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'vl\\_t\\_%' LOOP
            EXECUTE format('GRANT USAGE ON SCHEMA exchange TO %I', r);
            EXECUTE format('GRANT SELECT ON exchange.records, exchange.log TO %I', r);
          END LOOP;
        END $$;
        """
    )
    from villagelink.tenants.provisioning import ensure_member_roles, ensure_region_role

    bind = op.get_bind()
    # Region roles join the role their grants go to (made here, not only in 0005, for
    # the regions that exist when this revision runs).
    ensure_member_roles(bind)
    for (region_id,) in bind.execute(sa.text("SELECT id FROM platform.regions")):
        ensure_region_role(bind, region_id)


def downgrade() -> None:
    op.execute("DROP SCHEMA exchange CASCADE")
    op.drop_table("agreement_events", schema="platform")
    op.drop_table("agreement_parties", schema="platform")
    op.drop_table("agreements", schema="platform")
