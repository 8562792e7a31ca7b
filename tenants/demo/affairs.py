"""The demo villages' affairs (村务): ninety days of requests, activities, service
orders, notices and mediation before the seeding day, and the weeks ahead of it.

`build_affairs` makes every row from a seed, a day and the village's people (the
`VillageRows` of residents.build_village) without a database; `write_affairs`
bulk-inserts them once the people have database ids. Each domain's rows are made
and written by its own module here (requests.py, activities.py, service_orders.py,
notices.py, mediation.py).

Why bulk, not the actions. An action step costs about 13 ms on a two-core machine
(measured: create, accept, assign, start, resolve, rate of 200 requests, 17 s), so the
request history of the full-size region alone (≈1,400 requests, ≈8,000 steps) would take
well over a minute; and the activities' and service orders' actions refuse what lies in
the past (sign-ups after the start, slots that have begun). The rows are therefore
written in the shapes the actions write, step by step as they would have happened, and
every state, place and balance is decided by the domain's own rules, not by the demo:
each step is looked up in the domain's transition table (a step it does not allow
raises, so the demo cannot drift from the rules), places are taken and freed by the
activities' sign-up queue, points are what check-in awards and redemption allows,
and versions are counted as the actions count them. One outbox row goes out per
shareable record at its current version (what a neighbour receiving every change would
end up holding). Every step is by `system:demo` (escalations by `system:escalation`,
as the sweep would have made them), and the seeding itself is one audit entry
(region.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

from sqlalchemy import Connection

from villagelink.tenants.demo.activities import (
    Activities,
    ActivityRow,
    OccurrenceRow,
    PointsRow,
    SignUpRow,
    TeamRow,
    build_points,
    build_teams,
    write_activities,
    write_points,
    write_teams,
)
from villagelink.tenants.demo.mediation import CaseRow, build_cases, write_cases
from villagelink.tenants.demo.notices import NoticeRow, build_notices, write_notices
from villagelink.tenants.demo.requests import (
    ActionListRow,
    RequestRow,
    build_action_lists,
    build_requests,
    write_requests,
)
from villagelink.tenants.demo.residents import VillageIds, VillageRows
from villagelink.tenants.demo.service_orders import (
    OrderRow,
    ServiceItemRow,
    Services,
    SlotRow,
    write_services,
)
from villagelink.tenants.demo.village import Village
from villagelink.tenants.outbox import outbox


@dataclass
class AffairsRows:
    today: date
    requests: list[RequestRow] = field(default_factory=list)
    action_lists: list[ActionListRow] = field(default_factory=list)
    teams: list[TeamRow] = field(default_factory=list)
    activities: list[ActivityRow] = field(default_factory=list)
    occurrences: list[OccurrenceRow] = field(default_factory=list)
    sign_ups: list[SignUpRow] = field(default_factory=list)
    points: list[PointsRow] = field(default_factory=list)
    service_items: list[ServiceItemRow] = field(default_factory=list)
    slots: list[SlotRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    notices: list[NoticeRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each, for the seeding's audit entry."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self) if f.name != "today"}


def build_affairs(
    rows: VillageRows, village_name: str, seed: int, today: date, ages_as_of: date
) -> AffairsRows:
    """Every row of one village's affairs, from `seed`, `today` and its people alone."""
    v = Village(rows, village_name, ages_as_of, today, seed)
    affairs = AffairsRows(today)
    lives = build_requests(v)
    affairs.action_lists = build_action_lists(v, lives)
    affairs.requests = [life.finished() for life in lives]
    affairs.teams = build_teams(v)
    Activities(v, affairs).build()
    build_points(v, affairs)
    Services(v, affairs).build()
    affairs.notices = build_notices(v)
    affairs.cases = build_cases(v)
    return affairs


def write_affairs(
    conn: Connection, affairs: AffairsRows, rows: VillageRows, ids: VillageIds
) -> None:
    """Insert one village's affairs into the village schema of `conn`, after its people
    (`ids` are theirs, from residents.write_village), with the outbox rows of what may
    be shared."""
    shared: list[dict] = []
    write_requests(conn, affairs, ids)
    team_ids, team_rows = write_teams(conn, affairs.teams, ids)
    shared += team_rows
    sign_up_ids, activity_rows = write_activities(conn, affairs, ids)
    shared += activity_rows
    write_points(conn, affairs.points, ids, sign_up_ids)
    shared += write_services(conn, affairs, ids, team_ids)
    shared += write_notices(conn, affairs.notices)
    write_cases(conn, affairs.cases, ids)
    if shared:
        conn.execute(outbox.insert(), shared)
