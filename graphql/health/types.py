"""Health records, vitals and readings in the API: who sees what, masking, audited reads.

Health data is for the village's own people who look after the person. The village
admin sees all of it; a grid worker sees it for the residents of their grids, with
conditions masked unless asked for with a reason. Everyone else (the platform
operator, regional coordinators, integrators) gets FORBIDDEN on every health field,
decided before anything is looked up, so the answer is the same whether or not a
record exists. Every read is noted with `ctx.note_read` and written to the audit
log in one statement per village when the request ends.

Resident's record and vitals are loaded for a whole page of residents at once: this
module listens for pages of residents (`on_page`), whichever domain shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import BadUserInput, Forbidden
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import announce_page, connection_object, on_page
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.scalars import moment_argument
from villagelink.graphql.residents.types import resident_loader
from villagelink.platform.identity.principal import VILLAGE_ADMIN
from villagelink.tenants import clock
from villagelink.tenants.health import queries
from villagelink.tenants.health.actions import HEALTH_RECORD
from villagelink.tenants.sensitive import MIN_REASON_LENGTH, is_reason
from villagelink.tenants.user_errors import camel

RESIDENT = "Resident"
RECORD_READ = "health_record.read"
READINGS_READ = "health_readings.read"
MASKED_CONDITION = "***"

# How far a caller reaches into a village's health data.
WHOLE_VILLAGE = "village"
OWN_GRIDS = "grids"

resident_type = ObjectType(RESIDENT)
village_type = ObjectType("Village")
record_type = ObjectType("HealthRecord")
reading_type = ObjectType("HealthReading")
abnormal_type = ObjectType("AbnormalResident")
vitals_type = ObjectType("LatestVitals")
bucket_type = ObjectType("HealthReadingBucket")
thresholds_type = ObjectType("HealthThresholds")
self_type = ObjectType("ResidentSelf")
watched_type = ObjectType("WatchedFamilyMember")


def _bind_columns(bindable: ObjectType, *columns: str) -> None:
    """Fields read straight from their column where the API's name would not find it:
    the schema's names meet Python's as spo_2 (digits get underscores), the columns say spo2."""
    for column in columns:
        bindable.set_field(camel(column), lambda row, *_, column=column: row[column])


_bind_columns(reading_type, "spo2")
_bind_columns(vitals_type, "spo2", "spo2_at")
_bind_columns(bucket_type, "spo2_min")
_bind_columns(thresholds_type, "spo2_min")


# -- who sees health data --------------------------------------------------------


def health_reach(ctx: RequestContext, slug: str) -> str | None:
    """WHOLE_VILLAGE for the village's own admin, OWN_GRIDS for its grid workers, None for
    everyone else, even where they may read the rest of the village. A grid worker
    meets only the residents of their grids to begin with: the resident loaders and
    lists keep them there, and abnormalToday does the same."""
    if not ctx.access.can_read(slug):
        return None
    if ctx.principal.has(VILLAGE_ADMIN) and slug in ctx.principal.villages:
        return WHOLE_VILLAGE
    if slug in ctx.access.grid_scoped:
        return OWN_GRIDS
    return None


def require_health(ctx: RequestContext, slug: str) -> str:
    reach = health_reach(ctx, slug)
    if reach is None:
        raise Forbidden("health data is for the village's admin and its grid workers only")
    return reach


def require_own_or_health(ctx: RequestContext, resident: dict) -> None:
    """Reading one resident's readings: the village's health staff (`require_health`),
    or the resident themselves (the right of access; `me { resident }`)."""
    own = ctx.resident_of(resident["village"])
    if own is None or own["id"] != resident["id"]:
        require_health(ctx, resident["village"])


# -- loaders ---------------------------------------------------------------------


def _records_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "health:records", queries.records_by_resident)


def _vitals_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "health:latest_vitals", queries.vitals_by_resident)


def _consents_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "health:reading_consents", queries.consents_by_resident)


def _alerts_today_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        "health:alerts_today",
        lambda conn, ids: queries.alerts_of_day(conn, ids, clock.today()),
    )


def _residents_shown(ctx: RequestContext, slug: str, keys: list[int]) -> None:
    # Only announced: nothing is fetched unless a health field is asked for (and allowed).
    _records_loader(ctx, slug).expect(keys)
    _vitals_loader(ctx, slug).expect(keys)
    _consents_loader(ctx, slug).expect(keys)


on_page(RESIDENT, _residents_shown)


# -- Resident --------------------------------------------------------------------


def _time_range(start_raw: str, end_raw: str) -> tuple[datetime, datetime]:
    start = moment_argument(start_raw, "from")
    end = moment_argument(end_raw, "to")
    if start >= end:
        raise BadUserInput("开始时间须早于结束时间", argument="to")
    return start, end


@resident_type.field("healthRecord")
def resolve_health_record(resident: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    slug = resident["village"]
    require_health(ctx, slug)
    found = _records_loader(ctx, slug).load(resident["id"])
    if found is None:
        return None
    # Its resident is the one at hand: HealthRecord.resident needs no query.
    resident_loader(ctx, slug).prime(resident["id"], resident)
    return health_record_node(ctx, slug, found)


def health_record_node(ctx: RequestContext, slug: str, row: dict) -> dict:
    """A record about to be shown: its read is audited even if only its resident is asked for."""
    ctx.note_read(slug, RECORD_READ, HEALTH_RECORD, row["resident_id"])
    return {**row, "village": slug}


@resident_type.field("latestVitals")
def resolve_latest_vitals(resident: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    slug = resident["village"]
    require_own_or_health(ctx, resident)
    found = _vitals_loader(ctx, slug).load(resident["id"])
    if found is not None:
        ctx.note_read(slug, READINGS_READ, RESIDENT, resident["id"], ["latest"])
    return found


@resident_type.field("healthReadings")
def resolve_health_readings(resident: dict, info, first=None, after=None, **arguments):
    ctx: RequestContext = info.context
    slug, resident_id = resident["village"], resident["id"]
    require_own_or_health(ctx, resident)
    start, end = _time_range(arguments["from"], arguments["to"])
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)
    # Even an empty range tells something about the person: the query is the read.
    ctx.note_read(slug, READINGS_READ, RESIDENT, resident_id, ["readings"])
    return paginate(
        lambda limit: queries.reading_page(
            conn, resident_id, start, end, after_id=page.after_id, limit=limit
        ),
        page,
        count=lambda: queries.reading_count(conn, resident_id, start, end),
        node=lambda row: {**row, "village": slug},
    )


@resident_type.field("healthReadingSeries")
def resolve_health_reading_series(resident: dict, info, bucket: str, **arguments) -> list[dict]:
    ctx: RequestContext = info.context
    slug = resident["village"]
    require_health(ctx, slug)
    start, end = _time_range(arguments["from"], arguments["to"])
    step = queries.BUCKETS[bucket]
    points = queries.bucket_count(start, end, step)
    if points > queries.MAX_BUCKETS:
        raise BadUserInput(
            f"该时间范围按所选粒度共有{points}个数据点，超过上限{queries.MAX_BUCKETS}个，"
            "请缩短时间范围或选择更大的粒度",
            argument="bucket",
        )
    ctx.note_read(slug, READINGS_READ, RESIDENT, resident["id"], ["series"])
    series = queries.reading_series(ctx.tenant(slug), resident["id"], start, end, step)
    for point in series:
        # Buckets are cut on the village's clock, so their starts are told in it too.
        point["starts_at"] = clock.local(point["starts_at"])
        if point["heart_rate_avg"] is not None:
            point["heart_rate_avg"] = float(point["heart_rate_avg"])
    return series


# -- HealthRecord ------------------------------------------------------------------


def _record_field(name: str, part: str, value: Callable[[dict], object]) -> None:
    """Bind a record field whose reading is noted for the audit log under `part`."""

    def resolve(record: dict, info):
        info.context.note_read(
            record["village"], RECORD_READ, HEALTH_RECORD, record["resident_id"], [part]
        )
        return value(record)

    record_type.set_field(name, resolve)


def _safe_zone(record: dict) -> dict | None:
    if record["safe_zone_radius_m"] is None:
        return None
    return {
        "latitude": record["safe_zone_latitude"],
        "longitude": record["safe_zone_longitude"],
        "radius_m": record["safe_zone_radius_m"],
    }


def _heart_rate_range(record: dict) -> dict | None:
    if record["heart_rate_min"] is None:
        return None
    return {"min": record["heart_rate_min"], "max": record["heart_rate_max"]}


for _column in ("care_level", "wandering_risk", "note", "version"):
    _record_field(camel(_column), _column, lambda record, column=_column: record[column])


def _emergency_contacts(record: dict) -> list[dict]:
    # Each contact carries its record's village and resident: the phone's guard
    # (graphql/core/sensitive.py) needs to know whose rule applies and what to audit.
    return [
        {**contact, "village": record["village"], "id": record["resident_id"]}
        for contact in record["emergency_contacts"]
    ]


_record_field("emergencyContacts", "emergency_contacts", _emergency_contacts)
_record_field("safeZone", "safe_zone", _safe_zone)
_record_field("heartRateRange", "heart_rate_range", _heart_rate_range)


@record_type.field("conditions")
def resolve_conditions(record: dict, info, unmasked: bool = False, reason: str | None = None):
    ctx: RequestContext = info.context
    slug = record["village"]
    if health_reach(ctx, slug) != WHOLE_VILLAGE:
        if not unmasked:
            return [MASKED_CONDITION] * len(record["conditions"])
        if not is_reason(reason):
            raise BadUserInput(
                f"查看病症须说明原因（reason，至少 {MIN_REASON_LENGTH} 个字）", argument="reason"
            )
    ctx.note_read(slug, RECORD_READ, HEALTH_RECORD, record["resident_id"], ["conditions"], reason)
    return record["conditions"]


@record_type.field("readingConsents")
def resolve_reading_consents(record: dict, info) -> list[dict]:
    return _reading_consents(info.context, record)


def _reading_consents(ctx: RequestContext, record: dict) -> list[dict]:
    """The consents in force on a record (shown, so audited), each with the name the
    record gives its contact."""
    slug = record["village"]
    ctx.note_read(slug, RECORD_READ, HEALTH_RECORD, record["resident_id"], ["reading_consents"])
    found = _consents_loader(ctx, slug).load(record["resident_id"]) or []
    return [
        {
            **consent,
            "contact_name": (queries.named_contact(record, consent["contact_phone"]) or {}).get(
                "name"
            ),
            # For the phone's guard, as for the record's emergency contacts.
            "village": slug,
            "id": record["resident_id"],
        }
        for consent in found
    ]


@record_type.field("resident")
def resolve_record_resident(record: dict, info) -> dict | None:
    return resident_loader(info.context, record["village"]).load(record["resident_id"])


# -- HealthReading -----------------------------------------------------------------


@reading_type.field("device")
def resolve_reading_device(reading: dict, _info) -> str:
    return encode_id("Device", reading["village"], reading["device_id"])


# -- Village -----------------------------------------------------------------------


@village_type.field("abnormalToday")
def resolve_abnormal_today(village: dict, info, first=None, after=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    require_health(ctx, slug)
    page = page_args(first, after, ctx.settings.max_page_size)
    grids = ctx.allowed_grids(slug)
    today = clock.today()
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.abnormal_page(
            conn, today, allowed_grids=grids, after_id=page.after_id, limit=limit
        )
        shown = [r["id"] for r in rows[: page.first]]
        resident_loader(ctx, slug).expect(shown)
        announce_page(ctx, RESIDENT, slug, shown)
        return rows

    def node(row: dict) -> dict:
        ctx.note_read(slug, READINGS_READ, RESIDENT, row["id"], ["abnormal_today"])
        return {**row, "village": slug}

    return paginate(
        fetch,
        page,
        count=lambda: queries.abnormal_count(conn, today, allowed_grids=grids),
        node=node,
    )


@village_type.field("healthThresholds")
def resolve_health_thresholds(village: dict, info) -> dict:
    ctx: RequestContext = info.context
    require_health(ctx, village["slug"])
    return queries.thresholds(ctx.tenant(village["slug"]))


@abnormal_type.field("resident")
def resolve_abnormal_resident(row: dict, info) -> dict | None:
    return resident_loader(info.context, row["village"]).load(row["id"])


@abnormal_type.field("latestAbnormalReading")
def resolve_latest_abnormal_reading(row: dict, _info) -> dict:
    return {**row["latest"], "village": row["village"]}


# -- ResidentSelf.familyWatch: a family member's readings, for their emergency contact --


@self_type.field("familyWatch")
def resolve_family_watch(me: dict, info) -> list[dict]:
    """The wearers who consented that the caller, named on their record as an emergency
    contact, sees their readings: the consent and the naming are both checked in the one
    query, so a revoked consent or a contact taken off the record shows nothing."""
    ctx: RequestContext = info.context
    slug = me["village"]
    rows = queries.watched_by(ctx.tenant(slug), me["id"], me["phone"])
    _alerts_today_loader(ctx, slug).expect(row["id"] for row in rows)
    return [{**row, "village": slug} for row in rows]


watched_type.set_field("id", lambda row, *_: encode_id(RESIDENT, row["village"], row["id"]))


@self_type.field("emergencyContacts")
def resolve_own_emergency_contacts(me: dict, info) -> list[dict]:
    """The wearer's own record's contacts (the right of access), each with the consent in
    force for them: where the wearer grants and withdraws it themselves."""
    ctx: RequestContext = info.context
    slug = me["village"]
    found = _records_loader(ctx, slug).load(me["id"])
    if found is None:
        return []
    record = health_record_node(ctx, slug, found)
    ctx.note_read(slug, RECORD_READ, HEALTH_RECORD, me["id"], ["emergency_contacts"])
    consents = {c["contact_phone"]: c for c in _reading_consents(ctx, record)}
    return [
        {**contact, "reading_consent": consents.get(contact["phone"])}
        for contact in _emergency_contacts(record)
    ]


@watched_type.field("latestVitals")
def resolve_watched_vitals(row: dict, info) -> dict | None:
    if row["vitals"] is not None:
        info.context.note_read(row["village"], READINGS_READ, RESIDENT, row["id"], ["latest"])
    return row["vitals"]


@watched_type.field("alertsToday")
def resolve_watched_alerts_today(row: dict, info) -> list[dict]:
    ctx: RequestContext = info.context
    ctx.note_read(row["village"], READINGS_READ, RESIDENT, row["id"], ["alerts_today"])
    return _alerts_today_loader(ctx, row["village"]).load(row["id"]) or []


bindables = [
    self_type,
    watched_type,
    resident_type,
    village_type,
    record_type,
    reading_type,
    abnormal_type,
    vitals_type,
    bucket_type,
    thresholds_type,
    connection_object("HealthReadingConnection"),
    connection_object("AbnormalResidentConnection"),
]
