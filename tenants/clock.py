"""The village's time zone and clock: one definition for every domain, the jobs,
the simulator and the demo.

Villages keep their instants in UTC (`timestamptz`), but a day, a week or "today"
is the village's: a service day on the 20th begins at midnight in the village,
not on the server's clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

VILLAGE_TIME_ZONE = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current instant, time-zone aware (UTC)."""
    return datetime.now(UTC)


def local_now() -> datetime:
    """The current instant on the village's wall clock."""
    return datetime.now(VILLAGE_TIME_ZONE)


def today() -> date:
    """The village's date today (not the server's)."""
    return local_now().date()


def local(instant: datetime) -> datetime:
    """`instant` on the village's wall clock."""
    return instant.astimezone(VILLAGE_TIME_ZONE)


def day_start(day: date) -> datetime:
    """Midnight of `day` in the village: where a village's day, and a filter by date,
    begins and ends."""
    return datetime.combine(day, time(), tzinfo=VILLAGE_TIME_ZONE)
