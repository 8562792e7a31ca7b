"""Per-request state: who calls, what they may reach, and one transaction per village touched.

Each village the request touches gets its own connection, opened on first use
under that village's role (`SET LOCAL ROLE`), committed when the request ends
well and rolled back otherwise. Audited reads (unmasked fields, mediation cases)
are collected and written to the audit log in one statement per village just
before the commit, so a page of 50 costs the same number of statements as a page of 5.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, select

from villagelink.graphql.core.errors import Forbidden, NotFound
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.platform import models as pm
from villagelink.platform.access import Access, resolve_access
from villagelink.platform.audit import Actor, entry, record_many
from villagelink.platform.db import ACCESS_EPOCH
from villagelink.platform.identity.callers import Callers, Reach
from villagelink.platform.identity.principal import Principal
from villagelink.platform.linkage.policy import audiences, covering
from villagelink.platform.linkage.tables import REGION_AUDIENCE
from villagelink.tenants import clock
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.resident_accounts.queries import bound_resident

log = logging.getLogger(__name__)


# A query keeps at most this many transactions open, finishing the one used least
# recently before it opens another: reading a region's sixty villages one after
# another then holds two pooled connections, not sixty (the pool would run dry and
# every other request wait). A mutation keeps each village's transaction to the end,
# where they commit together.
READ_TRANSACTIONS = 2


class StaleReach(Exception):
    """The access epoch moved since the caller's reach was kept: the request is run again
    on a reach read afresh (graphql/gateway.py)."""


def runs_again_safely(resolver: Callable) -> Callable:
    """Marks a mutation's resolver that writes nothing, anywhere, before it opens its
    first village transaction: a request of such mutations alone may run on the reach
    kept with the caller's token, as a query does. Opening that transaction checks the
    reach; found stale, the request has done nothing yet and runs again afresh."""
    resolver.runs_again_safely = True  # type: ignore[attr-defined]
    return resolver


class RequestContext:
    def __init__(
        self,
        runtime,
        principal: Principal,
        request_id: str,
        *,
        read_only: bool = False,
        callers: Callers | None = None,
        token: str | None = None,
    ):
        self.runtime = runtime
        self.read_only = read_only
        self.settings = runtime.settings
        self.principal = principal
        self.request_id = request_id
        self.actor = Actor(principal, request_id)
        # The village's date, not the server's: at 01:00 in the village the server's
        # UTC clock still says yesterday.
        self.today = clock.today()
        self._access: Access | None = None
        self._villages: dict[str, dict] | None = None
        self._connections: dict[str, Connection] = {}
        self._grids: dict[str, frozenset[int] | None] = {}
        self._residents: dict[str, dict | None] = {}
        self._loaders: dict[tuple[str, str], BatchLoader] = {}
        # village -> (action, subject type, subject id) -> fields and reasons
        self._reads: dict[str, dict[tuple[str, str, str], dict]] = {}
        self._after_commit: list[Callable[[], None]] = []
        # A request may take the caller's reach as kept with their token (platform/identity/
        # callers.py) when given `callers`; `_kept_epoch` is then the epoch it was read at,
        # until a transaction of this request shows the epoch has not moved since.
        self._callers = callers if token is not None else None
        self._token = token or ""
        self._kept_epoch: int | None = None
        self.stale = False

    # -- platform data, read once per request ---------------------------------

    def _load_platform(self) -> tuple[Access, dict[str, dict]]:
        if self._callers is not None:
            kept = self._callers.reach(self._token)
            if kept is not None:
                self._kept_epoch = kept.epoch
                return kept.access, kept.villages
        with self.runtime.db.platform() as conn:
            access = resolve_access(conn, self.principal)
            rows = [
                dict(row)
                for row in conn.execute(
                    select(
                        pm.tenants,
                        pm.regions.c.name.label("region_name"),
                        # The epoch these rows and the reach are read at, in the same query.
                        select(pm.access_epoch.c.value).scalar_subquery().label(ACCESS_EPOCH),
                    )
                    .join(pm.regions, pm.regions.c.id == pm.tenants.c.region_id)
                    .where(pm.tenants.c.slug.in_(sorted(access.reachable)))
                    .order_by(pm.tenants.c.slug)
                ).mappings()
            ]
        epochs = {row.pop(ACCESS_EPOCH) for row in rows}
        villages = {row["slug"]: row for row in rows}
        if self._callers is not None and len(epochs) == 1:
            # A caller who reaches no village is not kept: there is no epoch to check.
            self._callers.remember_reach(self._token, Reach(access, villages, epochs.pop()))
        return access, villages

    def reload_platform(self) -> None:
        """Read the caller's reach and villages again when next asked: this request
        changed them (a village created, disabled or enabled)."""
        self._access = None
        self._villages = None
        self._callers = None
        self._kept_epoch = None

    @property
    def access(self) -> Access:
        if self._access is None:
            self._access, self._villages = self._load_platform()
        return self._access

    @property
    def villages(self) -> dict[str, dict]:
        """The villages the caller may read, by slug."""
        return {slug: v for slug, v in self._reachable().items() if self.access.can_read(slug)}

    def _reachable(self) -> dict[str, dict]:
        if self._villages is None:
            self._access, self._villages = self._load_platform()
        return self._villages

    def platform_rows(self, query) -> list[Mapping[str, Any]]:
        """Platform-schema rows (neighbour links, stats) in a short transaction of their own."""
        with self.runtime.db.platform() as conn:
            return list(conn.execute(query).mappings())

    # -- reach ----------------------------------------------------------------

    def village(self, slug: str, *, also: frozenset[str] = frozenset()) -> dict:
        """The village if the caller may read it, or it is among `also` (the villages a
        scope reaches, e.g. `access.device_writers`); otherwise it does not exist for them."""
        found = self._reachable().get(slug)
        if found is None or not (self.access.can_read(slug) or slug in also):
            if found is not None and slug in self.access.residents:
                # A resident knows their own village; what they may do there is theirs.
                raise Forbidden("居民只能查看和办理本户的事项")
            raise NotFound("village")
        return found

    def require_write(self, slug: str) -> None:
        self.village(slug)
        if not self.access.can_write(slug):
            raise Forbidden("your role may not change this village's records")

    def require_manage(self, slug: str, refusal: str) -> None:
        """NOT_FOUND outside the caller's reach; FORBIDDEN with `refusal` unless they
        manage the whole village (`Access.can_manage`)."""
        self.require_write(slug)
        if not self.access.can_manage(slug):
            raise Forbidden(refusal)

    def allowed_grids(self, slug: str) -> frozenset[int] | None:
        """None for whole-village callers; a grid worker's own grids otherwise."""
        if slug not in self.access.grid_scoped:
            return None
        if slug not in self._grids:
            self._grids[slug] = grids_of_account(self.tenant(slug), self.principal.sub)
        return self._grids[slug]

    def resident_of(self, slug: str) -> dict | None:
        """The resident record (id, household) a resident's account acts for in `slug`,
        None for anyone else and for an account the village has not bound."""
        if slug not in self.access.residents:
            return None
        if slug not in self._residents:
            self._residents[slug] = bound_resident(self.tenant(slug), self.principal.sub)
        return self._residents[slug]

    def require_resident(self, slug: str) -> dict:
        """The caller's own resident record in `slug`: FORBIDDEN for an unbound account,
        NOT_FOUND for a village that is not the caller's."""
        if slug not in self.access.residents:
            self.village(slug)
            raise Forbidden("只有居民本人可以办理")
        found = self.resident_of(slug)
        if found is None:
            raise Forbidden("您的账号尚未完成实名绑定，请先申请或到村委会办理")
        return found

    # -- village transactions -------------------------------------------------

    def tenant(self, slug: str) -> Connection:
        """The request's transaction in `slug`, under the village's role. Resolvers check
        what the caller may see in it first (`village`); this only refuses the unreachable."""
        if slug not in self._reachable():
            raise NotFound("village")
        return self._transaction(slug, lambda: self.runtime.db.begin_tenant(slug))

    def neighbour(self, owner: str, acting: str, record_type: str) -> tuple[Connection, list[int]]:
        """The transaction in `owner`'s village for an action the caller takes there on
        behalf of `acting` (booking a shared resource, reporting a missing person seen):
        the caller must be able to write in `acting`, and an agreement in force between
        the two must cover `record_type`. Returns the connection and those agreements;
        without one, the neighbour's record does not exist for the caller."""
        self.require_write(acting)
        if owner == acting:
            raise NotFound(record_type)
        with self.runtime.db.platform() as conn:
            agreement_ids = covering(conn, record_type, owner, [acting]).get(acting)
        if not agreement_ids:
            raise NotFound(record_type)
        return self._transaction(owner, lambda: self.runtime.db.begin_tenant(owner)), agreement_ids

    def region(self, region_id: str) -> Connection:
        """The request's read of the exchange schema as `region_id`'s coordinators
        (row-level security shows that region's copies only). Resolvers check that the
        caller may read the region first; committed and closed with the villages'."""
        return self._transaction(
            f"@region:{region_id}", lambda: self.runtime.db.begin_region(region_id)
        )

    def _transaction(self, key: str, begin: Callable[[], Connection]) -> Connection:
        """The request's open transaction `key`, or a new one from `begin`; a query
        first finishes its least recently used ones to stay within READ_TRANSACTIONS
        (it wrote nothing in them: its audit entries are written at `finish`)."""
        conn = self._connections.pop(key, None)
        if conn is None:
            while self.read_only and len(self._connections) >= READ_TRANSACTIONS:
                oldest = self._connections.pop(next(iter(self._connections)))
                try:
                    oldest.commit()
                finally:
                    oldest.close()
            conn = begin()
            if self._kept_epoch is not None and not self._kept_reach_holds(conn.info[ACCESS_EPOCH]):
                conn.close()
                raise StaleReach()
        self._connections[key] = conn  # the most recently used last
        return conn

    def _kept_reach_holds(self, epoch: int) -> bool:
        """Whether the kept reach the request used is still good at `epoch`, read in this
        request; once it is, the rest of the request trusts it."""
        if epoch == self._kept_epoch:
            self._kept_epoch = None
            return True
        self.stale = True
        return False

    def reach_is_stale(self) -> bool:
        """Whether the request ran on a kept reach that is out of date. A request that
        opened no village or region transaction reads the epoch here, at the end."""
        if self._kept_epoch is not None and not self.stale:
            with self.runtime.db.platform() as conn:
                self._kept_reach_holds(conn.execute(select(pm.access_epoch.c.value)).scalar_one())
        return self.stale

    def neighbours(self, acting: str, record_type: str) -> Iterator[tuple[str, Connection]]:
        """(owner, its transaction) for each neighbour with which `acting` has an
        agreement in force covering `record_type`, through `neighbour`: where `acting`
        reads back what it did in its neighbours' villages (bookings, sign-ups), from
        the records themselves rather than a copy."""
        self.require_write(acting)
        with self.runtime.db.platform() as conn:
            owners = sorted(
                v for v in audiences(conn, acting).get(record_type, {}) if v != REGION_AUDIENCE
            )
        for owner in owners:
            conn, _agreements = self.neighbour(owner, acting, record_type)
            yield owner, conn

    def loader(
        self, slug: str, name: str, fetch: Callable[[Connection, list], Mapping]
    ) -> BatchLoader:
        key = (slug, name)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = BatchLoader(lambda keys: fetch(self.tenant(slug), keys))
        return loader

    def note_read(
        self,
        slug: str,
        action: str,
        subject_type: str,
        subject_id: int,
        fields: Iterable[str] = (),
        reason: str | None = None,
    ) -> None:
        """Remember a read that must be audited; `finish` writes one entry per action
        and record, with the fields and reasons of all its reads in this request."""
        read = self._reads.setdefault(slug, {}).setdefault(
            (action, subject_type, str(subject_id)), {"fields": set(), "reasons": set()}
        )
        read["fields"].update(fields)
        if reason:
            read["reasons"].add(reason.strip()[:500])

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the request's transactions have committed, e.g. to
        enqueue a job that must see the rows just written; dropped on rollback."""
        self._after_commit.append(callback)

    # -- end of request -------------------------------------------------------

    def finish(self, commit: bool) -> None:
        """Write pending audit entries, then commit (or roll back) every village
        transaction. Raises if a commit fails: the response must not then show
        data whose audit entry was lost."""
        shared: list[str] = []
        try:
            if commit:
                for slug, reads in self._reads.items():
                    self._write_read_audit(slug, reads)
                for slug, conn in self._connections.items():
                    if self.runtime.db.commit_tenant(conn):
                        shared.append(slug)
        finally:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()
        if commit:
            self.runtime.db.shared_committed(shared)
            for callback in self._after_commit:
                try:
                    callback()
                except Exception:
                    # The writes stand; what the callback started is caught up later
                    # from the tables (docs/design.md: Redis is never the only copy).
                    log.exception("request %s: after-commit step failed", self.request_id)

    def _write_read_audit(self, slug: str, reads: dict) -> None:
        record_many(
            self.tenant(slug),
            [
                entry(
                    self.actor,
                    village=slug,
                    action=action,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    fields=sorted(what["fields"]),
                    reason="; ".join(sorted(what["reasons"])) or None,
                )
                for (action, subject_type, subject_id), what in reads.items()
            ],
        )
