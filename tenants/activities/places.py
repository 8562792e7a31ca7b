"""Places on an occurrence of an activity: what a sign-up gets and when a freed place
goes to the waitlist. The sign-up actions apply these rules under the occurrence's row
lock; the demo replays its sign-up history with the same rules (tenants/demo/activities.py).
"""

from __future__ import annotations

SIGNED_UP = "signed_up"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"
CHECKED_IN = "checked_in"
# A checked-in resident came: their place stays taken.
HOLDING_A_PLACE = (SIGNED_UP, CHECKED_IN)


def has_free_place(taken: int, capacity: int) -> bool:
    return taken < capacity


def sign_up_state(taken: int, capacity: int) -> str:
    """A new sign-up's state: a place while one is free, else the end of the waitlist."""
    return SIGNED_UP if has_free_place(taken, capacity) else WAITLISTED
