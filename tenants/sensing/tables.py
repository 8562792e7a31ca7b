"""Tables of the safety alert loop in one village: devices, what they report, the
rules that turn reports into alerts, and the alerts with their timeline.

docs/domain.md, flow 2: device event → rule → alert → the grid
worker of that place is told at once → acknowledges → resolves; an alert nobody
acknowledges in time rises to the village admin, then to the region.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from villagelink.tenants.models import id_column, metadata, one_of, timestamps

AI_CAMERA = "ai_camera"
SMOKE_SENSOR = "smoke_sensor"
GAS_SENSOR = "gas_sensor"
FIRE_LANE_SENSOR = "fire_lane_sensor"
WRISTBAND = "wristband"
MMWAVE_RADAR = "mmwave_radar"
HEALTH_KIOSK = "health_kiosk"
DEVICE_KINDS = (
    AI_CAMERA,
    SMOKE_SENSOR,
    GAS_SENSOR,
    FIRE_LANE_SENSOR,
    WRISTBAND,
    MMWAVE_RADAR,
    HEALTH_KIOSK,
)
# Devices worn by or watching over one person: they name the resident.
PERSONAL_KINDS = (WRISTBAND, MMWAVE_RADAR)

DEVICE_ACTIVE = "active"
DEVICE_OFFLINE = "offline"  # silent for longer than it should be
DEVICE_DISABLED = "disabled"  # taken out of service: its reports are refused
DEVICE_STATUSES = (DEVICE_ACTIVE, DEVICE_OFFLINE, DEVICE_DISABLED)

# Alert kinds raised straight from a device event of the same name.
FALL = "fall"
FIRE = "fire"
SMOKE = "smoke"
GAS = "gas"
VEHICLE_LINGERING = "vehicle_lingering"
FIRE_LANE_BLOCKED = "fire_lane_blocked"
SOS = "sos"
EVENT_ALERT_KINDS = (FALL, FIRE, SMOKE, GAS, VEHICLE_LINGERING, FIRE_LANE_BLOCKED, SOS)
# Alert kinds raised from health readings (tenants/health).
HEART_RATE_ABNORMAL = "heart_rate_abnormal"
LOW_SPO2 = "low_spo2"
HIGH_BLOOD_PRESSURE = "high_blood_pressure"
MISSING_PERSON = "missing_person"  # 走失: left the safe zone
READING_ALERT_KINDS = (HEART_RATE_ABNORMAL, LOW_SPO2, HIGH_BLOOD_PRESSURE, MISSING_PERSON)
ALERT_KINDS = EVENT_ALERT_KINDS + READING_ALERT_KINDS

SEVERITIES = ("critical", "high", "medium", "low")

# Raised, nobody yet named (no grid worker found): the village admin takes it.
OPEN = "open"
ASSIGNED = "assigned"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
FALSE_ALARM = "false_alarm"
ALERT_STATES = (OPEN, ASSIGNED, ACKNOWLEDGED, RESOLVED, FALSE_ALARM)
# Waiting for someone to acknowledge: the acknowledgement deadline runs.
UNACKNOWLEDGED_STATES = (OPEN, ASSIGNED)
LIVE_STATES = (OPEN, ASSIGNED, ACKNOWLEDGED)
CLOSED_STATES = (RESOLVED, FALSE_ALARM)

GRID = "grid"
VILLAGE = "village"
REGION = "region"
ESCALATION_LEVELS = (GRID, VILLAGE, REGION)

# kind: (severity, minutes to acknowledge, debounce minutes). Minutes matter: a fire
# waits two minutes for a grid worker before the village admin is called.
DEFAULT_ALERT_RULES = {
    FIRE: ("critical", 2, 10),
    GAS: ("critical", 2, 10),
    SMOKE: ("high", 3, 10),
    FALL: ("critical", 5, 10),
    SOS: ("critical", 5, 10),
    MISSING_PERSON: ("critical", 10, 60),
    HEART_RATE_ABNORMAL: ("high", 10, 30),
    LOW_SPO2: ("high", 10, 30),
    HIGH_BLOOD_PRESSURE: ("medium", 30, 60),
    VEHICLE_LINGERING: ("low", 30, 30),
    FIRE_LANE_BLOCKED: ("medium", 15, 30),
}

devices = Table(
    "devices",
    metadata,
    id_column(),
    Column("kind", Text, nullable=False),
    # The maker's serial: one device, one row, whoever registered it.
    Column("serial_number", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    # The integrator (API client) that registered and runs it; NULL for the village's own.
    Column("owner_client_id", Text),
    # Where: a grid, a building or a household (the grid follows from the other two).
    Column("grid_id", BigInteger, ForeignKey("grids.id", ondelete="SET NULL")),
    Column("building_id", BigInteger, ForeignKey("buildings.id", ondelete="SET NULL")),
    Column("household_id", BigInteger, ForeignKey("households.id", ondelete="SET NULL")),
    Column("location_text", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    # Whom a wristband or radar watches over.
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("status", Text, nullable=False, server_default=DEVICE_ACTIVE),
    Column("last_seen_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("kind", DEVICE_KINDS), name="devices_kind"),
    CheckConstraint(one_of("status", DEVICE_STATUSES), name="devices_status"),
    CheckConstraint(
        "(latitude IS NULL) = (longitude IS NULL)"
        " AND (latitude IS NULL OR latitude BETWEEN -90 AND 90)"
        " AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)",
        name="devices_coordinates",
    ),
    Index("devices_owner", "owner_client_id"),
    Index("devices_resident", "resident_id"),
    Index("devices_grid", "grid_id"),
    Index("devices_kind", "kind"),
)

# What devices reported, as they reported it; idempotent by (device, event id).
device_events = Table(
    "device_events",
    metadata,
    id_column(),
    Column("device_id", BigInteger, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    # The integrator's own id for the event: a re-sent batch changes nothing.
    Column("event_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The alert this event raised or joined, if a rule matched.
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="SET NULL")),
    UniqueConstraint("device_id", "event_id", name="device_events_device_event"),
    Index("device_events_occurred_at", "occurred_at"),
    Index("device_events_alert", "alert_id"),
)

# The village's rules: which alert kinds are raised, how severe, how fast they must be
# acknowledged, and how long one episode lasts. One row per alert kind.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("severity", Text, nullable=False),
    Column("ack_minutes", Integer, nullable=False),
    # Triggers of the same kind for the same person or device within this many minutes of
    # the last one join the alert already raised instead of raising another.
    Column("debounce_minutes", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("kind", ALERT_KINDS), name="alert_rules_kind"),
    CheckConstraint(one_of("severity", SEVERITIES), name="alert_rules_severity"),
    CheckConstraint("ack_minutes > 0 AND debounce_minutes >= 0", name="alert_rules_minutes"),
)

# 值班表: who is on duty when. An alert goes to an on-duty grid worker of its grid.
duty_shifts = Table(
    "duty_shifts",
    metadata,
    id_column(),
    Column("staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="CASCADE"), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("ends_at > starts_at", name="duty_shifts_order"),
    Index("duty_shifts_staff_time", "staff_id", "starts_at", "ends_at"),
)

alerts = Table(
    "alerts",
    metadata,
    id_column(),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=OPEN),
    Column("level", Text, nullable=False, server_default=GRID),
    # Who or what the episode is about ("resident:12", "device:40"): triggers of the same
    # kind and episode key join one live alert (debouncing).
    Column("episode_key", Text, nullable=False),
    Column("device_id", BigInteger, ForeignKey("devices.id", ondelete="SET NULL")),
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("grid_id", BigInteger, ForeignKey("grids.id", ondelete="SET NULL")),
    Column("building_id", BigInteger, ForeignKey("buildings.id", ondelete="SET NULL")),
    Column("household_id", BigInteger, ForeignKey("households.id", ondelete="SET NULL")),
    Column("location_text", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    # What triggered it, in words a grid worker reads on a phone (e.g. "心率 134 次/分").
    Column("summary", Text, nullable=False),
    Column("assignee_staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="SET NULL")),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("last_triggered_at", DateTime(timezone=True), nullable=False),
    Column("occurrences", Integer, nullable=False, server_default="1"),
    # Acknowledge by then, or the alert rises a level.
    Column("ack_due_at", DateTime(timezone=True), nullable=False),
    # Set by the notify job once the assignee (or the level above) has been told.
    Column("notified_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", Text),
    Column("escalated_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    # How it ended, as told to the family and the village (e.g. "已送医").
    Column("outcome", Text),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("kind", ALERT_KINDS), name="alerts_kind"),
    CheckConstraint(one_of("severity", SEVERITIES), name="alerts_severity"),
    CheckConstraint(one_of("state", ALERT_STATES), name="alerts_state"),
    CheckConstraint(one_of("level", ESCALATION_LEVELS), name="alerts_level"),
    # One live alert per kind and episode: concurrent triggers join it, never duplicate it.
    Index(
        "alerts_live_episode",
        "kind",
        "episode_key",
        unique=True,
        postgresql_where=text(one_of("state", LIVE_STATES)),
    ),
    # The console's live feed: newest first.
    Index("alerts_raised_at", text("raised_at DESC"), text("id DESC")),
    Index("alerts_grid", "grid_id"),
    Index("alerts_resident", "resident_id"),
    # The escalation sweep looks at unacknowledged alerts by deadline.
    Index(
        "alerts_unacknowledged_due",
        "ack_due_at",
        postgresql_where=text(one_of("state", UNACKNOWLEDGED_STATES)),
    ),
)

# The alert's timeline (处置记录): one row per step, never updated.
alert_events = Table(
    "alert_events",
    metadata,
    id_column(),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    # raise, retrigger, assign, notify, acknowledge, escalate, resolve, mark_false_alarm
    Column("action", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("level", Text),
    Column("staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="SET NULL")),
    Column("note", Text),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("alert_events_alert", "alert_id", "id"),
)
