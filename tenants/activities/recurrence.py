"""When a series happens: its rule turned into dates and local start and end times.

Rules are kept simple because villages keep them simple: once; weekly on a
weekday (周末课堂 every Saturday); monthly on a day (每月20日便民服务日). A monthly
day past the end of a short month falls on its last day (31 → 30 April), so a
"last day of the month" series never skips a month.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from villagelink.tenants.clock import VILLAGE_TIME_ZONE


@dataclass(frozen=True)
class Rule:
    repeat: str  # once | weekly | monthly
    starts_on: date
    until: date | None = None
    weekday: int | None = None  # ISO: 1 Monday .. 7 Sunday
    month_day: int | None = None

    @classmethod
    def of(cls, activity: dict) -> Rule:
        return cls(
            repeat=activity["repeat"],
            starts_on=activity["starts_on"],
            until=activity["until"],
            weekday=activity["weekday"],
            month_day=activity["month_day"],
        )


def _weekly(rule: Rule, first: date, last: date) -> Iterator[date]:
    day = first + timedelta(days=(rule.weekday - first.isoweekday()) % 7)
    while day <= last:
        yield day
        day += timedelta(days=7)


def _monthly(rule: Rule, first: date, last: date) -> Iterator[date]:
    year, month = first.year, first.month
    while date(year, month, 1) <= last:
        day = date(year, month, min(rule.month_day, calendar.monthrange(year, month)[1]))
        if first <= day <= last:
            yield day
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def dates(rule: Rule, window_start: date, window_end: date) -> list[date]:
    """The days of the series between the two dates, both included."""
    first = max(rule.starts_on, window_start)
    last = min(rule.until, window_end) if rule.until else window_end
    if rule.repeat == "once":
        return [rule.starts_on] if first <= rule.starts_on <= last else []
    if first > last:
        return []
    if rule.repeat == "weekly":
        return list(_weekly(rule, first, last))
    return list(_monthly(rule, first, last))


def span(day: date, start_time: time, duration_minutes: int) -> tuple[datetime, datetime]:
    """Start and end of one occurrence as aware timestamps."""
    starts_at = datetime.combine(day, start_time, tzinfo=VILLAGE_TIME_ZONE)
    return starts_at, starts_at + timedelta(minutes=duration_minutes)
