"""Data-sharing agreements and the exchange log in GraphQL.

Agreements live in the platform schema: each list is read in one short platform
transaction, and the parties and history of every agreement in it come in one
query each, on first use (`_Batch`), whatever the list's length. An agreement's
global ID names the village it was read through, so that `node` checks the caller
may see that village's agreements; mutations take any of them.

The exchange log is read in the village's own transaction: row-level security
there shows only rows whose origin or audience is the village.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType, ObjectType, QueryType
from sqlalchemy import Connection, func, select

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import decode_id, encode_id, int_key, key_number
from villagelink.graphql.core.nodes import connection_object, register_node_type
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.linkage.region import may_read_region
from villagelink.jobs.sync import enqueue_sync
from villagelink.platform import models as pm
from villagelink.platform.linkage import agreements as actions
from villagelink.platform.linkage.catalogue import FIELD_LABELS, RECORD_TYPES
from villagelink.platform.linkage.tables import REGION_AUDIENCE, agreement_parties, agreements, log
from villagelink.tenants.querying import limit_of
from villagelink.tenants.user_errors import DUPLICATE, refused

AGREEMENT = "Agreement"
LOG_ENTRY = "ExchangeLogEntry"
MAX_LOG_PAGE = 100

query = QueryType()
mutation = MutationType()
village_type = ObjectType("Village")
region_type = ObjectType("Region")
agreement_type = ObjectType(AGREEMENT)
log_entry_type = ObjectType(LOG_ENTRY)
log_connection_type = connection_object("ExchangeLogConnection")


# -- who sees what ---------------------------------------------------------------


def _may_see_agreements(ctx: RequestContext, slug: str) -> dict:
    """The village, if the caller may read its agreements: its admins and grid workers
    (whoever writes there; platform admins too), its region's coordinators."""
    village = ctx.village(slug)
    if not (ctx.access.can_write(slug) or may_read_region(ctx, village["region_id"])):
        raise Forbidden("only the village's staff and its region's coordinators see its agreements")
    return village


def _require_village_admin(ctx: RequestContext, slug: str) -> None:
    """Proposing and answering is for the village's own admins."""
    ctx.village(slug)
    if not ctx.access.can_unmask(slug):
        raise Forbidden("only the village's admins propose and answer its agreements")


# -- loading ---------------------------------------------------------------------


class _Batch:
    """The parties and history of a list of agreements, each fetched once for all."""

    def __init__(self, ctx: RequestContext, ids: list[int]):
        self.ctx, self.ids = ctx, ids
        self._parties: dict[int, list[dict]] | None = None
        self._history: dict[int, list[dict]] | None = None

    def _read(self, fetch: Callable[[Connection, list[int]], dict]) -> dict:
        with self.ctx.runtime.db.platform() as conn:
            return fetch(conn, self.ids)

    def parties(self, agreement_id: int) -> list[dict]:
        if self._parties is None:
            self._parties = self._read(actions.parties_of)
        return self._parties[agreement_id]

    def history(self, agreement_id: int) -> list[dict]:
        if self._history is None:
            self._history = self._read(actions.history_of)
        return self._history[agreement_id]


def _as_seen(ctx: RequestContext, rows: list[dict], seen_from: Callable[[dict], str]) -> list:
    batch = _Batch(ctx, [row["id"] for row in rows])
    return [
        {**row, "_type": AGREEMENT, "_batch": batch, "_seen_from": seen_from(row)} for row in rows
    ]


def _states(state: str | None) -> list[str] | None:
    return None if state is None else [state]


@village_type.field("agreements")
def resolve_village_agreements(village: dict, info, state: str | None = None) -> list[dict]:
    ctx: RequestContext = info.context
    slug = village["slug"]
    _may_see_agreements(ctx, slug)
    with ctx.runtime.db.platform() as conn:
        rows = actions.agreements_of(conn, slug, _states(state))
    return _as_seen(ctx, rows, lambda _row: slug)


@region_type.field("agreements")
def resolve_region_agreements(region: dict, info, state: str | None = None) -> list[dict]:
    ctx: RequestContext = info.context
    if not may_read_region(ctx, region["id"]):
        raise Forbidden("only the region's coordinators see its agreements")
    with ctx.runtime.db.platform() as conn:
        rows = actions.agreements_of_region(conn, region["id"], _states(state))
    return _as_seen(ctx, rows, lambda row: row["proposer"])


def _agreement_seen_by(ctx: RequestContext, slug: str, agreement_id: int) -> dict | None:
    """One agreement as `slug` sees it, if `slug` is a party (else None)."""
    p = agreement_parties
    with ctx.runtime.db.platform() as conn:
        row = (
            conn.execute(
                select(agreements)
                .join(p, (p.c.agreement_id == agreements.c.id) & (p.c.village == slug))
                .where(agreements.c.id == agreement_id)
            )
            .mappings()
            .first()
        )
    return _as_seen(ctx, [dict(row)], lambda _row: slug)[0] if row else None


def _fetch_agreement(ctx: RequestContext, slug: str, key: str) -> dict | None:
    _may_see_agreements(ctx, slug)
    number = key_number(key)
    return None if number is None else _agreement_seen_by(ctx, slug, number)


register_node_type(AGREEMENT, _fetch_agreement)


def agreement_gid(slug: str, agreement_id: int) -> str:
    return encode_id(AGREEMENT, slug, agreement_id)


agreement_type.set_field("id", lambda row, *_: agreement_gid(row["_seen_from"], row["id"]))
agreement_type.set_field("inForce", lambda row, *_: actions.in_force(row))
agreement_type.set_field("parties", lambda row, *_: row["_batch"].parties(row["id"]))
agreement_type.set_field("history", lambda row, *_: row["_batch"].history(row["id"]))
agreement_type.set_field(
    "recordTypes",
    lambda row, *_: [
        {"type": name, "label": RECORD_TYPES[name].label, "fields": row["fields"].get(name, [])}
        for name in row["record_types"]
    ],
)


@agreement_type.field("proposer")
def resolve_proposer(row: dict, *_args) -> dict:
    proposer = row["proposer"]
    for party in row["_batch"].parties(row["id"]):
        if party["village"] == proposer:
            return {"slug": proposer, "name": party["name"]}
    return {"slug": proposer, "name": proposer}


@query.field("linkageRecordTypes")
def resolve_record_types(*_args) -> list[dict]:
    return [
        {
            "type": t.name,
            "label": t.label,
            "fields": list(t.fields),
            "agreeable": t.agreeable,
            "field_labels": [{"field": f, "label": FIELD_LABELS[f]} for f in t.fields],
        }
        for t in RECORD_TYPES.values()
    ]


# -- the exchange log ------------------------------------------------------------


@village_type.field("exchangeLog")
def resolve_exchange_log(
    village: dict,
    info,
    first: int | None = None,
    after: str | None = None,
    direction: str | None = None,
):
    ctx: RequestContext = info.context
    slug = village["slug"]
    ctx.village(slug)
    if not ctx.access.can_manage(slug):
        raise Forbidden("only the village's admins read its exchange log")
    page = page_args(first, after, MAX_LOG_PAGE)
    # Row-level security already limits the village's transaction to its rows; the
    # direction narrows them (and lets the indexes on origin or audience serve).
    where = []
    if direction == "sent":
        where.append(log.c.origin == slug)
    elif direction == "received":
        where.append(log.c.audience == slug)
    conn = ctx.tenant(slug)

    def fetch(limit: int):
        # Newest first: the cursor carries the last id shown, the next page is older.
        query_ = select(log).where(*where).order_by(log.c.id.desc()).limit(limit_of(limit))
        if page.after_id is not None:
            query_ = query_.where(log.c.id < page.after_id)
        rows = list(conn.execute(query_).mappings())
        names = _audience_names(
            ctx, village, {r["origin"] for r in rows} | {r["audience"] for r in rows}
        )
        return [
            {
                **row,
                "_seen_from": slug,
                "origin_name": names.get(row["origin"], row["origin"]),
                "audience_name": names.get(row["audience"], row["audience"]),
            }
            for row in rows
        ]

    return paginate(
        fetch,
        page,
        lambda: conn.execute(select(func.count()).select_from(log).where(*where)).scalar_one(),
    )


def _audience_names(ctx: RequestContext, village: dict, slugs: set[str]) -> dict[str, str]:
    """The names of the villages a page of the log names, in one statement, and the
    region's for its coordinators' audience: a log reaches every village of the region
    (their statistics), not only the neighbours, and its reader reads names, not slugs."""
    villages = slugs - {REGION_AUDIENCE}
    rows = (
        ctx.platform_rows(
            select(pm.tenants.c.slug, pm.tenants.c.name).where(
                pm.tenants.c.slug.in_(sorted(villages))
            )
        )
        if villages
        else []
    )
    return {REGION_AUDIENCE: village["region_name"], **{r["slug"]: r["name"] for r in rows}}


log_entry_type.set_field("id", lambda row, *_: encode_id(LOG_ENTRY, row["_seen_from"], row["id"]))
log_entry_type.set_field(
    "agreementIds",
    lambda row, *_: [agreement_gid(row["_seen_from"], i) for i in row["agreement_ids"]],
)


# -- mutations -------------------------------------------------------------------


def _agreement_key(raw: str) -> int:
    """Any Agreement ID, whichever village it was read through; the action checks the
    acting village is a party."""
    return int_key(decode_id(raw, AGREEMENT))


def _act(info, village: str, step: Callable[[Connection], dict], *, moves_data: bool) -> dict:
    """Run `step` in a platform transaction of its own, committed before the payload
    is read; when data flow changed, reconcile every party once the request ends."""
    ctx: RequestContext = info.context

    def run() -> dict:
        with ctx.runtime.db.platform() as conn:
            agreement = step(conn)
        if moves_data:
            parties = agreement["party_villages"]
            ctx.after_commit(lambda: enqueue_sync(ctx.settings, parties, reconcile=True))
        return {"agreement": _agreement_seen_by(ctx, village, agreement["id"])}

    return payload(run, "agreement")


def _record_types(items: list[dict]) -> dict[str, list[str]]:
    """The chosen record types and their fields; a type chosen twice is refused."""
    chosen: dict[str, list[str]] = {}
    for i, item in enumerate(items):
        if item["type"] in chosen:
            raise refused(f"recordTypes.{i}.type", "同一数据类型只能选择一次", DUPLICATE)
        chosen[item["type"]] = item["fields"]
    return chosen


@mutation.field("proposeAgreement")
def resolve_propose(_obj, info, input: dict) -> dict:
    _require_village_admin(info.context, input["village"])
    village = input["village"]

    def step(conn: Connection) -> dict:
        return actions.do_propose_agreement(
            conn,
            info.context.actor,
            village,
            counterpart=input.get("counterpart"),
            region_wide=bool(input.get("region_wide")),
            record_types=_record_types(input["record_types"]),
            purpose=input["purpose"],
            valid_from=input.get("valid_from"),
            valid_until=input.get("valid_until"),
        )

    return _act(info, village, step, moves_data=False)


def _answer_step(do: Callable, *, moves_data: bool, with_reason: bool) -> Callable:
    def resolve(_obj, info, input: dict) -> dict:
        village = input["village"]
        _require_village_admin(info.context, village)
        agreement_id = _agreement_key(input["agreement"])
        extra = {"reason": input.get("reason")} if with_reason else {}

        def step(conn: Connection) -> dict:
            return do(conn, info.context.actor, agreement_id, village, **extra)

        return _act(info, village, step, moves_data=moves_data)

    return resolve


mutation.set_field(
    "acceptAgreement",
    _answer_step(actions.do_accept_agreement, moves_data=True, with_reason=False),
)
# A pending party never received anything: declining changes no copy.
mutation.set_field(
    "declineAgreement",
    _answer_step(actions.do_decline_agreement, moves_data=False, with_reason=True),
)
mutation.set_field(
    "revokeAgreement",
    _answer_step(actions.do_revoke_agreement, moves_data=True, with_reason=True),
)

bindables = [
    query,
    mutation,
    village_type,
    region_type,
    agreement_type,
    log_entry_type,
    log_connection_type,
]
