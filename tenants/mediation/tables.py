"""Mediation cases (调解案件) of the village's mediation room (三室联建, 小崔议事).

Parties, their phones and what they said in a session are among the most
private things a village keeps: only the village's own admin sees a case, and
nothing here is ever shared with neighbours (no outbox).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from villagelink.tenants.models import id_column, metadata, one_of, timestamps

# 邻里纠纷, 家庭纠纷, 物业纠纷, 土地房屋纠纷, 劳务纠纷, 其他
CATEGORIES = ("neighbour", "family", "property", "land_housing", "labour", "other")
# 已登记, 调解中, 达成协议结案, 已转交, 未达成协议终结, 已撤回
STATUSES = ("registered", "in_mediation", "resolved", "referred", "closed", "withdrawn")
# 达成协议, 未达成协议, 转交其他部门
OUTCOMES = ("agreement", "no_agreement", "referred")
# 申请人, 被申请人
PARTY_ROLES = ("applicant", "respondent")

# The last number handed out per year: the row lock taken by the upsert that
# bumps it makes concurrent registrations wait for each other, so numbers are
# unique and (since a rolled-back bump rolls back too) without gaps.
mediation_case_numbers = Table(
    "mediation_case_numbers",
    metadata,
    Column("year", SmallInteger, primary_key=True),
    Column("last_number", Integer, nullable=False),
)

mediation_cases = Table(
    "mediation_cases",
    metadata,
    id_column(),
    # 调〔year〕第number号: numbered per village (schema) and year.
    Column("year", SmallInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("category", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="registered"),
    # The mediator's name as it stands on the case; `mediator_staff_id` when it
    # is one of the village's grid staff.
    Column("mediator_name", Text),
    Column("mediator_staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="SET NULL")),
    Column("outcome", Text),
    Column("agreement_text", Text),
    Column("referred_to", Text),
    # Why it was withdrawn, or a remark on how it ended.
    Column("closing_note", Text),
    Column("concluded_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    UniqueConstraint("year", "number", name="mediation_cases_number"),
    CheckConstraint(one_of("category", CATEGORIES), name="mediation_cases_category"),
    CheckConstraint(one_of("status", STATUSES), name="mediation_cases_status"),
    CheckConstraint(
        f"outcome IS NULL OR {one_of('outcome', OUTCOMES)}", name="mediation_cases_outcome"
    ),
    Index("mediation_cases_status", "status"),
)

mediation_parties = Table(
    "mediation_parties",
    metadata,
    id_column(),
    Column(
        "case_id", BigInteger, ForeignKey("mediation_cases.id", ondelete="CASCADE"), nullable=False
    ),
    Column("role", Text, nullable=False),
    # A resident of the village, or (resident_id empty) someone from outside it.
    # The name is kept either way: the case records who the party was at the time.
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("name", Text, nullable=False),
    # Outside parties only; a resident's phone stays on the resident record.
    Column("phone", Text),
    CheckConstraint(one_of("role", PARTY_ROLES), name="mediation_parties_role"),
    Index("mediation_parties_case", "case_id"),
    Index("mediation_parties_resident", "resident_id"),
)

mediation_sessions = Table(
    "mediation_sessions",
    metadata,
    id_column(),
    Column(
        "case_id", BigInteger, ForeignKey("mediation_cases.id", ondelete="CASCADE"), nullable=False
    ),
    Column("held_on", Date, nullable=False),
    Column("place", Text, nullable=False),
    Column("attendees", ARRAY(Text), nullable=False),
    Column("notes", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("mediation_sessions_case", "case_id"),
)
