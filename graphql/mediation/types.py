"""Mediation case types: the village admin's alone, and every read of a case audited.

Anyone but the village's own admin meets NOT_FOUND, for the list and for any
case ID, before anything is looked up: they cannot even tell whether a case
exists. Each case a request shows is noted with `ctx.note_read`, with the parts
of it that were asked for; the context writes those entries in one statement
per village when the request ends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import MAXYEAR, MINYEAR

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import NotFound
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.numbers import within
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.residents.types import resident_loader
from villagelink.graphql.villages.types import grid_staff_loader
from villagelink.platform.identity.principal import VILLAGE_ADMIN
from villagelink.tenants.mediation import queries
from villagelink.tenants.mediation.actions import MEDIATION_CASE
from villagelink.tenants.user_errors import camel

CASE_READ = "mediation_case.read"

village_type = ObjectType("Village")
case_type = node_object(MEDIATION_CASE)
party_type = ObjectType("MediationParty")
mediator_type = ObjectType("Mediator")


def sees_mediation(ctx: RequestContext, slug: str) -> bool:
    """Mediation is for the village's own admin (the mediation room works through
    them): not the platform operator, coordinators, grid workers or integrators,
    even where they may read the rest of the village."""
    principal = ctx.principal
    return slug in ctx.villages and principal.has(VILLAGE_ADMIN) and slug in principal.villages


def require_mediation(ctx: RequestContext, slug: str) -> None:
    if not sees_mediation(ctx, slug):
        raise NotFound(MEDIATION_CASE)


def _seen(ctx: RequestContext, case: dict) -> dict:
    """A case about to be shown: its read is audited even if only its ID is asked for."""
    ctx.note_read(case["village"], CASE_READ, MEDIATION_CASE, case["id"])
    return case


def case_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        MEDIATION_CASE,
        lambda conn, ids: {
            k: as_node(MEDIATION_CASE, slug, v) for k, v in queries.cases_by_ids(conn, ids).items()
        },
    )


def _parties_loader(ctx: RequestContext, slug: str):
    def fetch(conn, case_ids: list[int]) -> dict[int, list[dict]]:
        found = queries.parties_by_case(conn, case_ids)
        # Whoever lists parties tends to ask who the resident parties are next.
        resident_loader(ctx, slug).expect(
            p["resident_id"] for parties in found.values() for p in parties
        )
        return {k: [{**p, "village": slug} for p in v] for k, v in found.items()}

    return ctx.loader(slug, "mediation_parties", fetch)


def _sessions_loader(ctx: RequestContext, slug: str):
    return ctx.loader(slug, "mediation_sessions", queries.sessions_by_case)


def _announce_cases(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """One query each for the page's parties, sessions and mediators, not one per case."""
    _parties_loader(ctx, slug).expect(r["id"] for r in rows)
    _sessions_loader(ctx, slug).expect(r["id"] for r in rows)
    grid_staff_loader(ctx, slug).expect(r["mediator_staff_id"] for r in rows)


@village_type.field("mediationCases")
def resolve_mediation_cases(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    require_mediation(ctx, slug)
    page = page_args(first, after, ctx.settings.max_page_size)
    raw = filter or {}
    flt = queries.CaseFilter(
        status=raw.get("status"),
        category=raw.get("category"),
        # A year a date can hold (the column is a smallint).
        year=within(raw.get("year"), "filter.year", MINYEAR, MAXYEAR),
    )
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.case_page(conn, flt, after_id=page.after_id, limit=limit)
        _announce_cases(ctx, slug, rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.case_count(conn, flt),
        node=lambda row: _seen(ctx, as_node(MEDIATION_CASE, slug, row)),
    )


def _load_case_by_key(ctx: RequestContext, village: str, key: str) -> dict | None:
    # Decided before any lookup, so a case ID tells an outsider nothing.
    if not sees_mediation(ctx, village):
        return None
    case = fetch_by_int_key(case_loader)(ctx, village, key)
    return _seen(ctx, case) if case else None


register_node_type(MEDIATION_CASE, _load_case_by_key)


def _case_field(name: str, part: str) -> Callable:
    """Bind the resolver of a case field so that reading it is noted for the audit
    log under `part` (the column or part of the case it shows)."""

    def bind(resolve: Callable) -> Callable:
        def resolver(case: dict, info, **kwargs):
            info.context.note_read(case["village"], CASE_READ, MEDIATION_CASE, case["id"], [part])
            return resolve(case, info, **kwargs)

        case_type.set_field(name, resolver)
        return resolve

    return bind


for _column in (
    "year",
    "category",
    "summary",
    "status",
    "outcome",
    "agreement_text",
    "referred_to",
    "closing_note",
    "concluded_at",
    "version",
    "created_at",
    "updated_at",
):
    _case_field(camel(_column), _column)(lambda case, _info, column=_column: case[column])


@_case_field("number", "number")
def resolve_case_number(case: dict, _info) -> str:
    return queries.case_number(case)


@_case_field("parties", "parties")
def resolve_case_parties(case: dict, info) -> list[dict]:
    return _parties_loader(info.context, case["village"]).load(case["id"]) or []


@_case_field("sessions", "sessions")
def resolve_case_sessions(case: dict, info) -> list[dict]:
    return _sessions_loader(info.context, case["village"]).load(case["id"]) or []


@_case_field("mediator", "mediator")
def resolve_case_mediator(case: dict, _info) -> dict | None:
    if case["mediator_name"] is None:
        return None
    return {
        "name": case["mediator_name"],
        "staff_id": case["mediator_staff_id"],
        "village": case["village"],
    }


@mediator_type.field("staff")
def resolve_mediator_staff(mediator: dict, info) -> dict | None:
    return grid_staff_loader(info.context, mediator["village"]).load(mediator["staff_id"])


@party_type.field("resident")
def resolve_party_resident(party: dict, info) -> dict | None:
    return resident_loader(info.context, party["village"]).load(party["resident_id"])


bindables = [
    village_type,
    case_type,
    party_type,
    mediator_type,
    connection_object("MediationCaseConnection"),
]
