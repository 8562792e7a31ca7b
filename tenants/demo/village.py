"""The village as every domain's demo module sees it: its people, places and staff,
the groups the affairs draw from, one random source, and the moments of the history.

Time. The domains judge their records by the real clock (overdue requests, sign-ups
that open until a session starts, slots bookable while in the future), so the affairs
are laid out around `today`, the seeding day on the village's clock (tenants/clock.py):
the history ends at its midnight, the coming sessions and slots start the day after.
The same seed and day give the same rows; a village seeded on another day gets the
same story moved to that day.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from faker import Faker

from villagelink.platform.audit import system_actor
from villagelink.tenants.activities.recurrence import span
from villagelink.tenants.clock import day_start, local

if TYPE_CHECKING:
    from villagelink.tenants.demo.residents import VillageRows

HISTORY_DAYS = 90
# Sign-ups and service orders are taken this far ahead of today.
BOOKING_DAYS_AHEAD = 21

DEMO_ACTOR = system_actor("demo")
DEMO_SUB = DEMO_ACTOR.principal.sub


# --- the village as the affairs see it ----------------------------------------------

# The order in which automatic assignment prefers grid staff (requests.queries).
TIER_RANK = {"micro_grid_worker": 0, "grid_worker": 1, "grid_chief": 2}


class Village:
    """The people, places and staff of one village, with the groups the affairs draw
    from, and one random source for everything (so a seed gives one village)."""

    def __init__(self, rows: VillageRows, name: str, ages_as_of: date, today: date, seed: int):
        self.rows = rows
        self.name = name
        self.today = today
        self.start = day_start(today)  # the end of the history: midnight before the seeding
        self.history_start = self.start - timedelta(days=HISTORY_DAYS)
        self.rng = random.Random(f"affairs:{seed}")
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.ages = [age_on(r.birth_date, ages_as_of) for r in rows.residents]
        tags: dict[int, set[str]] = {}
        for tag in rows.tags:
            tags.setdefault(tag.resident, set()).add(tag.tag)
        self.tags = tags
        self.members: dict[int, list[int]] = {}
        for position, resident in enumerate(rows.residents):
            self.members.setdefault(resident.household, []).append(position)
        self._assignees: dict[int, int | None] = {}

    def residents_where(self, keep: Callable[[int], bool]) -> list[int]:
        return [r for r in range(len(self.rows.residents)) if keep(r)]

    def adults_of(self, household: int) -> list[int]:
        return [r for r in self.members.get(household, []) if self.ages[r] >= 18]

    def moment(self, day: date, at: time) -> datetime:
        return span(day, at, 0)[0]

    def between(self, first: datetime, last: datetime) -> datetime:
        """A moment in [first, last), to the second."""
        seconds = max(0, int((last - first).total_seconds()) - 1)
        return first + timedelta(seconds=self.rng.randint(0, seconds))

    def daytime(self, first: datetime, last: datetime) -> datetime:
        """A moment in [first, last) in office hours (8:00-20:00 in the village) when there
        are any."""
        for _ in range(20):
            moment = self.between(first, last)
            if 8 <= local(moment).hour < 20:
                return moment
        return self.between(first, last)

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(low, high) * 3600))

    def auto_assignee(self, grid: int) -> int | None:
        """Whom `assignRequest` picks without an assignee (requests.queries.auto_assignee):
        a micro-grid worker, else a grid worker, else the grid chief, of the request's grid
        or the nearest one above it; staff are written in order, so position breaks ties
        as the id does."""
        if grid not in self._assignees:
            depth: dict[int, int] = {}
            g: int | None = grid
            while g is not None:
                depth[g] = len(depth)
                g = self.rows.grids[g].parent
            ranked = [
                (TIER_RANK[s.tier], depth[g], position)
                for position, s in enumerate(self.rows.staff)
                for g in s.grids
                if g in depth
            ]
            self._assignees[grid] = min(ranked)[2] if ranked else None
        return self._assignees[grid]


def age_on(born: date, as_of: date) -> int:
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def allotted(weights: Sequence[tuple[str, float]], total: int) -> list[str]:
    """`total` labels in the weights' proportions, exactly (largest remainder), each at
    least once when there are enough; unshuffled. Fixed shares rather than coin flips,
    so that a small test village carries every kind too."""
    counts = dict.fromkeys((label for label, _ in weights), 0)
    rest = total
    if total >= len(weights):
        counts = dict.fromkeys(counts, 1)
        rest -= len(weights)
    whole = sum(w for _, w in weights)
    shares = [(label, rest * w / whole) for label, w in weights]
    for label, share in shares:
        counts[label] += int(share)
    left = total - sum(counts.values())
    by_remainder = sorted(shares, key=lambda item: item[1] - int(item[1]), reverse=True)
    for label, _ in by_remainder[:left]:
        counts[label] += 1
    return [label for label, count in counts.items() for _ in range(count)]
