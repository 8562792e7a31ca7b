"""Tables of the elderly care loop (docs/domain.md, flow 3) in one village: health records,
the readings wristbands and kiosks stream in, each resident's latest vitals, and the
village's thresholds.

Health data is sensitive: who may read what is decided in tenants/health/queries.py,
and every read of a record or its readings is audited.
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
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from villagelink.tenants.models import id_column, metadata, one_of, timestamps

SELF_CARE = "self_care"  # 自理
ASSISTED = "assisted"  # 半失能
FULL_CARE = "full_care"  # 失能
CARE_LEVELS = (SELF_CARE, ASSISTED, FULL_CARE)

# What a reading can be abnormal for; the alert kinds of the same meaning are in
# tenants/sensing/tables.py.
HEART_RATE = "heart_rate"
SPO2 = "spo2"
BLOOD_PRESSURE = "blood_pressure"
OUTSIDE_SAFE_ZONE = "outside_safe_zone"
ABNORMALITIES = (HEART_RATE, SPO2, BLOOD_PRESSURE, OUTSIDE_SAFE_ZONE)

# 健康档案: one per resident who has one (every elderly resident in the demo).
health_records = Table(
    "health_records",
    metadata,
    Column(
        "resident_id",
        BigInteger,
        ForeignKey("residents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("conditions", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    # [{"name": ..., "relation": ..., "phone": ...}], first to be called first.
    Column("emergency_contacts", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("care_level", Text, nullable=False, server_default=SELF_CARE),
    Column("wandering_risk", Boolean, nullable=False, server_default=text("false")),
    # The safe zone: a circle around home; leaving it raises a missing-person alert when
    # the resident is at risk of wandering.
    Column("safe_zone_latitude", Float),
    Column("safe_zone_longitude", Float),
    Column("safe_zone_radius_m", Integer),
    # This person's own heart-rate range, when the doctor set one; else the village's.
    Column("heart_rate_min", SmallInteger),
    Column("heart_rate_max", SmallInteger),
    Column("note", Text),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("care_level", CARE_LEVELS), name="health_records_care_level"),
    CheckConstraint(
        "(safe_zone_latitude IS NULL) = (safe_zone_longitude IS NULL)"
        " AND (safe_zone_latitude IS NULL) = (safe_zone_radius_m IS NULL)"
        " AND (safe_zone_radius_m IS NULL OR safe_zone_radius_m > 0)",
        name="health_records_safe_zone",
    ),
    CheckConstraint(
        "heart_rate_min IS NULL OR heart_rate_max IS NULL OR heart_rate_min < heart_rate_max",
        name="health_records_heart_rate_range",
    ),
)

# 体征数据: append-only, idempotent by (device, reading id).
health_readings = Table(
    "health_readings",
    metadata,
    id_column(),
    Column("device_id", BigInteger, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("reading_id", Text, nullable=False),
    Column(
        "resident_id", BigInteger, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False
    ),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("heart_rate", SmallInteger),
    Column("spo2", SmallInteger),
    Column("systolic", SmallInteger),
    Column("diastolic", SmallInteger),
    Column("latitude", Float),
    Column("longitude", Float),
    # What was out of range when it arrived (ABNORMALITIES): "abnormal today" reads this.
    Column("abnormal", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    UniqueConstraint("device_id", "reading_id", name="health_readings_device_reading"),
    Index("health_readings_resident_time", "resident_id", "measured_at"),
    Index(
        "health_readings_abnormal_time",
        "measured_at",
        postgresql_where=text("abnormal <> '{}'"),
    ),
)

# The newest value of each vital per resident, kept up to date at ingest so that
# "latest vitals" never scans the readings.
latest_vitals = Table(
    "latest_vitals",
    metadata,
    Column(
        "resident_id",
        BigInteger,
        ForeignKey("residents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("heart_rate", SmallInteger),
    Column("heart_rate_at", DateTime(timezone=True)),
    Column("spo2", SmallInteger),
    Column("spo2_at", DateTime(timezone=True)),
    Column("systolic", SmallInteger),
    Column("diastolic", SmallInteger),
    Column("blood_pressure_at", DateTime(timezone=True)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("location_at", DateTime(timezone=True)),
)

# 家属查看授权: the wearer consents that one of their emergency contacts, a resident of
# the village with an app account, may see their latest readings and today's alerts in
# the residents' app. Recorded by the wearer or by the village admin or a grid worker on
# their behalf; revoked, never deleted, so who could see what and when stays on record.
# The contact's phone is the one the record named them by: while the record names a
# contact of that phone no longer, the consent shows nothing (tenants/health/queries.py).
reading_consents = Table(
    "reading_consents",
    metadata,
    id_column(),
    Column(
        "resident_id", BigInteger, ForeignKey("residents.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "contact_resident_id",
        BigInteger,
        ForeignKey("residents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("contact_phone", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_by", Text),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint("contact_resident_id <> resident_id", name="reading_consents_not_self"),
    CheckConstraint(
        "(revoked_at IS NULL) = (revoked_by IS NULL)", name="reading_consents_revocation"
    ),
    # One live consent per wearer and contact.
    Index(
        "reading_consents_live",
        "resident_id",
        "contact_resident_id",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
    ),
    # The contact's view: whose readings may I see.
    Index(
        "reading_consents_contact",
        "contact_resident_id",
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

# The village's thresholds (one row, id 1), used where a person has no range of their own.
health_thresholds = Table(
    "health_thresholds",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default="1"),
    Column("heart_rate_min", SmallInteger, nullable=False, server_default="50"),
    Column("heart_rate_max", SmallInteger, nullable=False, server_default="120"),
    Column("spo2_min", SmallInteger, nullable=False, server_default="90"),
    Column("systolic_max", SmallInteger, nullable=False, server_default="160"),
    Column("diastolic_max", SmallInteger, nullable=False, server_default="100"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="health_thresholds_single_row"),
    CheckConstraint(
        "heart_rate_min < heart_rate_max AND spo2_min BETWEEN 50 AND 100"
        " AND systolic_max > diastolic_max",
        name="health_thresholds_sane",
    ),
)
