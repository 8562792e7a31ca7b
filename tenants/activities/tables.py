"""Tables of activities (文明实践活动), volunteer teams (志愿服务队) and the points
ledger (积分) inside one village schema; created by migration `ac0001`.

An activity is a series: its schedule rule (once, weekly on a weekday, monthly on
a day) is materialised into occurrences (场次), and residents sign up for an
occurrence. The ledger is append-only: a trigger in the migration refuses UPDATE,
DELETE and TRUNCATE, so a balance is always the sum of what was ever written.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from villagelink.tenants.models import id_column, metadata, one_of

ACTIVITY_KINDS = ("weekend_class", "service_day", "talk", "clinic", "culture", "volunteer_service")
VOLUNTEER_SERVICE = "volunteer_service"
ACTIVITY_STATES = ("draft", "published", "cancelled", "finished")
REPEATS = ("once", "weekly", "monthly")
SIGN_UP_STATES = ("signed_up", "waitlisted", "cancelled", "checked_in")


def _now(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


activities = Table(
    "activities",
    metadata,
    id_column(),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("place", Text, nullable=False),
    # Places per occurrence, copied onto each occurrence when it is scheduled.
    Column("capacity", Integer, nullable=False),
    Column("state", Text, nullable=False, server_default="draft"),
    # Residents of neighbouring villages may see it and (through the linkage) sign up.
    Column("open_to_neighbours", Boolean, nullable=False, server_default=text("false")),
    Column("repeat", Text, nullable=False, server_default="once"),
    Column("weekday", SmallInteger),  # ISO 1 (Monday) .. 7, weekly series only
    Column("month_day", SmallInteger),  # 1..31, monthly series only; clamped to short months
    Column("starts_on", Date, nullable=False),
    Column("until", Date),
    Column("start_time", Time, nullable=False),  # local time of the village
    Column("duration_minutes", Integer, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    _now("created_at"),
    _now("updated_at"),
    # The volunteer team that runs it (组织队伍): its leader shows the check-in code.
    Column("team_id", BigInteger, ForeignKey("volunteer_teams.id", ondelete="SET NULL")),
    CheckConstraint(one_of("kind", ACTIVITY_KINDS), name="activities_kind"),
    CheckConstraint(one_of("state", ACTIVITY_STATES), name="activities_state"),
    CheckConstraint(one_of("repeat", REPEATS), name="activities_repeat"),
    CheckConstraint("capacity > 0", name="activities_capacity"),
    CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name="activities_duration"),
    CheckConstraint(
        "(repeat = 'weekly') = (weekday IS NOT NULL)"
        " AND (weekday IS NULL OR weekday BETWEEN 1 AND 7)",
        name="activities_weekday",
    ),
    CheckConstraint(
        "(repeat = 'monthly') = (month_day IS NOT NULL)"
        " AND (month_day IS NULL OR month_day BETWEEN 1 AND 31)",
        name="activities_month_day",
    ),
    CheckConstraint(
        "until IS NULL OR (repeat <> 'once' AND until >= starts_on)", name="activities_until"
    ),
    Index("activities_kind_state", "kind", "state"),
)

activity_occurrences = Table(
    "activity_occurrences",
    metadata,
    id_column(),
    Column(
        "activity_id",
        BigInteger,
        ForeignKey("activities.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    _now("created_at"),
    # Set when the village moves it (本场改期, `ac0004`): where the series put it, so that
    # scheduling again never puts it back, and why, for the residents signed up.
    Column("planned_starts_at", DateTime(timezone=True)),
    Column("move_reason", Text),
    CheckConstraint("ends_at > starts_at", name="activity_occurrences_span"),
    CheckConstraint("capacity > 0", name="activity_occurrences_capacity"),
    CheckConstraint(
        "(planned_starts_at IS NULL) = (move_reason IS NULL)", name="activity_occurrences_moved"
    ),
    # Scheduling twice over the same horizon adds nothing.
    UniqueConstraint("activity_id", "starts_at", name="activity_occurrences_once"),
    Index("activity_occurrences_starts_at", "starts_at"),
)

# The code the organiser shows on the day (签到码): one per occurrence, replaced when
# issued again; a resident checking in by themselves must type it (created by `ac0003`).
activity_check_in_codes = Table(
    "activity_check_in_codes",
    metadata,
    Column(
        "occurrence_id",
        BigInteger,
        ForeignKey("activity_occurrences.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("code", Text, nullable=False),
    # The occurrence's day in the village: the code checks in on no other day.
    Column("valid_on", Date, nullable=False),
    _now("issued_at"),
    Column("issued_by", Text, nullable=False),
    CheckConstraint("code ~ '^[0-9]{6}$'", name="activity_check_in_codes_code"),
)

# Wrong codes typed per occurrence and account: six digits fall to guessing unless
# the guesses are counted (and stopped) somewhere that outlives a request.
activity_check_in_failures = Table(
    "activity_check_in_failures",
    metadata,
    Column(
        "occurrence_id",
        BigInteger,
        ForeignKey("activity_occurrences.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("principal", Text, nullable=False),
    Column("failures", SmallInteger, nullable=False),
    _now("last_failed_at"),
    PrimaryKeyConstraint("occurrence_id", "principal"),
)

activity_sign_ups = Table(
    "activity_sign_ups",
    metadata,
    id_column(),
    Column(
        "occurrence_id",
        BigInteger,
        ForeignKey("activity_occurrences.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # A resident of this village, or null for a resident of a neighbouring village
    # signed up by that village under an agreement (the `guest_*` columns).
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="CASCADE")),
    # Only what the occurrence needs of a neighbour's resident: their village, their
    # id there (for that village to refer back) and their name.
    Column("guest_village", Text),
    Column("guest_resident_id", BigInteger),
    Column("guest_name", Text),
    Column("note", Text),
    Column("state", Text, nullable=False),
    # Waitlist order: set from clock_timestamp() once the occurrence is locked,
    # so it follows the order in which sign-ups really got in.
    Column("signed_up_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("checked_in_at", DateTime(timezone=True)),
    Column("volunteer_hours", Numeric(5, 2)),
    _now("updated_at"),
    CheckConstraint(one_of("state", SIGN_UP_STATES), name="activity_sign_ups_state"),
    CheckConstraint(
        "volunteer_hours IS NULL OR volunteer_hours > 0 AND volunteer_hours <= 24",
        name="activity_sign_ups_hours",
    ),
    CheckConstraint(
        "(resident_id IS NULL) = (guest_village IS NOT NULL)"
        " AND (guest_village IS NULL) = (guest_resident_id IS NULL)"
        " AND (guest_village IS NULL) = (guest_name IS NULL)",
        name="activity_sign_ups_participant",
    ),
    # One sign-up per resident and occurrence; signing up again revives it.
    UniqueConstraint("occurrence_id", "resident_id", name="activity_sign_ups_once"),
    UniqueConstraint(
        "occurrence_id", "guest_village", "guest_resident_id", name="activity_sign_ups_guest_once"
    ),
    Index("activity_sign_ups_queue", "occurrence_id", "state", "signed_up_at"),
    Index("activity_sign_ups_resident", "resident_id"),
)

volunteer_teams = Table(
    "volunteer_teams",
    metadata,
    id_column(),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text),
    Column("leader_resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("version", Integer, nullable=False, server_default="1"),
    _now("created_at"),
    _now("updated_at"),
)

volunteer_team_members = Table(
    "volunteer_team_members",
    metadata,
    Column(
        "team_id",
        BigInteger,
        ForeignKey("volunteer_teams.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "resident_id",
        BigInteger,
        ForeignKey("residents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("skills", ARRAY(Text), nullable=False, server_default="{}"),
    _now("joined_at"),
    PrimaryKeyConstraint("team_id", "resident_id"),
    Index("volunteer_team_members_resident", "resident_id"),
)

points_ledger = Table(
    "points_ledger",
    metadata,
    id_column(),
    # No cascade: the ledger is history, a resident with entries is not deleted.
    Column("resident_id", BigInteger, ForeignKey("residents.id"), nullable=False),
    # Positive: earned; negative: redeemed (never beyond the balance).
    Column("points", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    # The record that earned or spent the points: a GraphQL type name and its key
    # ("ActivitySignUp", 12), or a kind without a record ("manual", "redemption").
    Column("source_type", Text, nullable=False),
    Column("source_id", BigInteger),
    _now("created_at"),
    Column("created_by", Text, nullable=False),  # the principal's subject
    CheckConstraint("points <> 0", name="points_ledger_points"),
    Index("points_ledger_resident", "resident_id", "id"),
    # A source record moves a resident's points once: awards stay idempotent.
    Index(
        "points_ledger_source",
        "resident_id",
        "source_type",
        "source_id",
        unique=True,
        postgresql_where=text("source_id IS NOT NULL"),
    ),
)

points_rules = Table(
    "points_rules",
    metadata,
    # One row per village (the schema is the village); absent until first changed.
    Column("id", SmallInteger, primary_key=True, server_default="1", autoincrement=False),
    Column("points_per_volunteer_hour", Integer, nullable=False),
    _now("updated_at"),
    CheckConstraint("id = 1", name="points_rules_single_row"),
    CheckConstraint("points_per_volunteer_hour BETWEEN 0 AND 1000", name="points_rules_rate"),
)

REDEMPTION_STATES = ("pending", "handed_over")

# What a village offers for points (积分超市); `stock` never goes below zero, so two
# residents redeeming the last one cannot both get it.
points_rewards = Table(
    "points_rewards",
    metadata,
    id_column(),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text),
    Column("points_cost", Integer, nullable=False),
    Column("stock", Integer, nullable=False),
    # Off the residents' list without losing the redemptions that name it.
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default="1"),
    _now("created_at"),
    _now("updated_at"),
    CheckConstraint("points_cost > 0", name="points_rewards_cost"),
    CheckConstraint("stock >= 0", name="points_rewards_stock"),
)

# A reward redeemed by a resident: its ledger entry (source "PointsRedemption") spent
# the points; the village hands the reward over and marks it so.
points_redemptions = Table(
    "points_redemptions",
    metadata,
    id_column(),
    Column("reward_id", BigInteger, ForeignKey("points_rewards.id"), nullable=False),
    Column("resident_id", BigInteger, ForeignKey("residents.id"), nullable=False),
    # The cost when redeemed (the reward's cost may change later).
    Column("points", Integer, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    _now("created_at"),
    Column("handed_over_at", DateTime(timezone=True)),
    Column("handed_over_by", Text),
    CheckConstraint("points > 0", name="points_redemptions_points"),
    CheckConstraint(one_of("state", REDEMPTION_STATES), name="points_redemptions_state"),
    CheckConstraint(
        "(state = 'handed_over') = (handed_over_at IS NOT NULL)",
        name="points_redemptions_handed_over",
    ),
    Index("points_redemptions_state", "state", "id"),
    Index("points_redemptions_resident", "resident_id", "id"),
)
