"""sensing: devices, device events, alert rules, duty shifts, alerts and their timeline;
health records, readings, latest vitals and thresholds

Revision ID: se0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "se0001"
down_revision = "0001"
branch_labels = ("sensing",)
depends_on = None

# kind: (severity, minutes to acknowledge, debounce minutes), as in tenants/sensing/tables.py
# when this revision was written.
DEFAULT_ALERT_RULES = {
    "fire": ("critical", 2, 10),
    "gas": ("critical", 2, 10),
    "smoke": ("high", 3, 10),
    "fall": ("critical", 5, 10),
    "sos": ("critical", 5, 10),
    "missing_person": ("critical", 10, 60),
    "heart_rate_abnormal": ("high", 10, 30),
    "low_spo2": ("high", 10, 30),
    "high_blood_pressure": ("medium", 30, 60),
    "vehicle_lingering": ("low", 30, 30),
    "fire_lane_blocked": ("medium", 15, 30),
}


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("serial_number", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner_client_id", sa.Text(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("building_id", sa.BigInteger(), nullable=True),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("location_text", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('ai_camera', 'smoke_sensor', 'gas_sensor', 'fire_lane_sensor', "
            "'wristband', 'mmwave_radar', 'health_kiosk')",
            name="devices_kind",
        ),
        sa.CheckConstraint("status IN ('active', 'offline', 'disabled')", name="devices_status"),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL) AND (latitude IS NULL OR latitude BETWEEN "
            "-90 AND 90) AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)",
            name="devices_coordinates",
        ),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("serial_number"),
    )
    op.create_index("devices_grid", "devices", ["grid_id"], unique=False)
    op.create_index("devices_kind", "devices", ["kind"], unique=False)
    op.create_index("devices_owner", "devices", ["owner_client_id"], unique=False)
    op.create_index("devices_resident", "devices", ["resident_id"], unique=False)
    op.create_table(
        "alert_rules",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("ack_minutes", sa.Integer(), nullable=False),
        sa.Column("debounce_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('fall', 'fire', 'smoke', 'gas', 'vehicle_lingering', 'fire_lane_blocked', "
            "'sos', 'heart_rate_abnormal', 'low_spo2', 'high_blood_pressure', 'missing_person')",
            name="alert_rules_kind",
        ),
        sa.CheckConstraint(
            "severity IN ('critical', 'high', 'medium', 'low')", name="alert_rules_severity"
        ),
        sa.CheckConstraint("ack_minutes > 0 AND debounce_minutes >= 0", name="alert_rules_minutes"),
        sa.PrimaryKeyConstraint("kind"),
    )
    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("ends_at > starts_at", name="duty_shifts_order"),
        sa.ForeignKeyConstraint(["staff_id"], ["grid_staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "duty_shifts_staff_time", "duty_shifts", ["staff_id", "starts_at", "ends_at"], unique=False
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("level", sa.Text(), server_default="grid", nullable=False),
        sa.Column("episode_key", sa.Text(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("building_id", sa.BigInteger(), nullable=True),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("location_text", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("assignee_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), server_default="1", nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('fall', 'fire', 'smoke', 'gas', 'vehicle_lingering', 'fire_lane_blocked', "
            "'sos', 'heart_rate_abnormal', 'low_spo2', 'high_blood_pressure', 'missing_person')",
            name="alerts_kind",
        ),
        sa.CheckConstraint("level IN ('grid', 'village', 'region')", name="alerts_level"),
        sa.CheckConstraint(
            "severity IN ('critical', 'high', 'medium', 'low')", name="alerts_severity"
        ),
        sa.CheckConstraint(
            "state IN ('open', 'assigned', 'acknowledged', 'resolved', 'false_alarm')",
            name="alerts_state",
        ),
        sa.ForeignKeyConstraint(["assignee_staff_id"], ["grid_staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("alerts_grid", "alerts", ["grid_id"], unique=False)
    op.create_index(
        "alerts_live_episode",
        "alerts",
        ["kind", "episode_key"],
        unique=True,
        postgresql_where=sa.text("state IN ('open', 'assigned', 'acknowledged')"),
    )
    op.create_index(
        "alerts_raised_at",
        "alerts",
        [sa.literal_column("raised_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index("alerts_resident", "alerts", ["resident_id"], unique=False)
    op.create_index(
        "alerts_unacknowledged_due",
        "alerts",
        ["ack_due_at"],
        unique=False,
        postgresql_where=sa.text("state IN ('open', 'assigned')"),
    )
    op.create_table(
        "device_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "event_id", name="device_events_device_event"),
    )
    op.create_index("device_events_alert", "device_events", ["alert_id"], unique=False)
    op.create_index("device_events_occurred_at", "device_events", ["occurred_at"], unique=False)
    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["grid_staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("alert_events_alert", "alert_events", ["alert_id", "id"], unique=False)
    op.create_table(
        "health_records",
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "conditions",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "emergency_contacts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("care_level", sa.Text(), server_default="self_care", nullable=False),
        sa.Column("wandering_risk", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("safe_zone_latitude", sa.Float(), nullable=True),
        sa.Column("safe_zone_longitude", sa.Float(), nullable=True),
        sa.Column("safe_zone_radius_m", sa.Integer(), nullable=True),
        sa.Column("heart_rate_min", sa.SmallInteger(), nullable=True),
        sa.Column("heart_rate_max", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "care_level IN ('self_care', 'assisted', 'full_care')", name="health_records_care_level"
        ),
        sa.CheckConstraint(
            "(safe_zone_latitude IS NULL) = (safe_zone_longitude IS NULL) AND "
            "(safe_zone_latitude IS NULL) = (safe_zone_radius_m IS NULL) AND "
            "(safe_zone_radius_m IS NULL OR safe_zone_radius_m > 0)",
            name="health_records_safe_zone",
        ),
        sa.CheckConstraint(
            "heart_rate_min IS NULL OR heart_rate_max IS NULL OR heart_rate_min < heart_rate_max",
            name="health_records_heart_rate_range",
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("resident_id"),
    )
    op.create_table(
        "health_readings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("reading_id", sa.Text(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("heart_rate", sa.SmallInteger(), nullable=True),
        sa.Column("spo2", sa.SmallInteger(), nullable=True),
        sa.Column("systolic", sa.SmallInteger(), nullable=True),
        sa.Column("diastolic", sa.SmallInteger(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column(
            "abnormal", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "reading_id", name="health_readings_device_reading"),
    )
    op.create_index(
        "health_readings_abnormal_time",
        "health_readings",
        ["measured_at"],
        unique=False,
        postgresql_where=sa.text("abnormal <> '{}'"),
    )
    op.create_index(
        "health_readings_resident_time",
        "health_readings",
        ["resident_id", "measured_at"],
        unique=False,
    )
    op.create_table(
        "latest_vitals",
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heart_rate", sa.SmallInteger(), nullable=True),
        sa.Column("heart_rate_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spo2", sa.SmallInteger(), nullable=True),
        sa.Column("spo2_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("systolic", sa.SmallInteger(), nullable=True),
        sa.Column("diastolic", sa.SmallInteger(), nullable=True),
        sa.Column("blood_pressure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("location_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("resident_id"),
    )
    op.create_table(
        "health_thresholds",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("heart_rate_min", sa.SmallInteger(), server_default="50", nullable=False),
        sa.Column("heart_rate_max", sa.SmallInteger(), server_default="120", nullable=False),
        sa.Column("spo2_min", sa.SmallInteger(), server_default="90", nullable=False),
        sa.Column("systolic_max", sa.SmallInteger(), server_default="160", nullable=False),
        sa.Column("diastolic_max", sa.SmallInteger(), server_default="100", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "heart_rate_min < heart_rate_max AND spo2_min BETWEEN 50 AND 100 AND systolic_max > "
            "diastolic_max",
            name="health_thresholds_sane",
        ),
        sa.CheckConstraint("id = 1", name="health_thresholds_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )

    op.bulk_insert(
        sa.table(
            "alert_rules",
            sa.column("kind", sa.Text),
            sa.column("severity", sa.Text),
            sa.column("ack_minutes", sa.Integer),
            sa.column("debounce_minutes", sa.Integer),
        ),
        [
            {"kind": kind, "severity": severity, "ack_minutes": ack, "debounce_minutes": debounce}
            for kind, (severity, ack, debounce) in DEFAULT_ALERT_RULES.items()
        ],
    )
    op.bulk_insert(sa.table("health_thresholds", sa.column("id", sa.SmallInteger)), [{"id": 1}])


def downgrade() -> None:
    op.drop_table("health_thresholds")
    op.drop_table("latest_vitals")
    op.drop_table("health_readings")
    op.drop_table("health_records")
    op.drop_table("alert_events")
    op.drop_table("device_events")
    op.drop_table("alerts")
    op.drop_table("duty_shifts")
    op.drop_table("alert_rules")
    op.drop_table("devices")
