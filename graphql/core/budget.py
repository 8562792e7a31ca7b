"""Each caller's cost budget: what its requests may cost in one minute, kept in Redis.

A request is charged the cost of the operation it runs (graphql/core/limits.py: the values
its answer can hold), and at least MIN_CHARGE, so that the budget bounds cheap requests'
number as well as heavy ones' weight: `{ me { username } }` and a malformed body both cost
MIN_CHARGE, a page of 100 residents with ten fields about 1,100. The minimum is charged
before the request is read and the rest once the operation is measured, each by one atomic
script that charges only what fits, so a refused request spends nothing more.

The window is the clock minute (a caller's budget comes back whole at each minute's
start): `reset` is the seconds until then, as the `RateLimit-Reset` header and
`Retry-After` tell it. When Redis is down nothing is charged and the request goes through:
the limit protects the service, it must not take it down.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

MIN_CHARGE = 100
WINDOW_SECONDS = 60

# Charges ARGV[1] to the window's key if it fits under ARGV[2]; answers whether it did and
# what has been spent. Atomic: concurrent requests of one caller cannot overspend.
CHARGE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if spent + amount > tonumber(ARGV[2]) then
  return {0, spent}
end
spent = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, spent}
"""


@dataclass(frozen=True)
class BudgetState:
    """The caller's budget after a charge (or a refused one)."""

    limit: int
    remaining: int
    reset: int
    charged: bool

    def headers(self) -> dict[str, str]:
        """The IETF draft's RateLimit header fields (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class Budget:
    """One request's view of its caller's budget: charges, and the state after the last."""

    def __init__(self, client: redis.Redis, caller: str, limit: int) -> None:
        self.client, self.limit = client, limit
        self.window = int(time.time() // WINDOW_SECONDS)
        self.key = f"villagelink:budget:{caller}:{self.window}"
        self.state: BudgetState | None = None

    def charge(self, amount: int) -> BudgetState | None:
        """Charge `amount` if the budget holds it; the state after, or None when Redis
        cannot tell (nothing charged, the request goes on)."""
        reset = (self.window + 1) * WINDOW_SECONDS - int(time.time())
        try:
            charged, spent = self.client.register_script(CHARGE)(
                keys=[self.key], args=[amount, self.limit, WINDOW_SECONDS * 2]
            )
        except redis.RedisError:
            log.warning("rate budget unavailable; request allowed", exc_info=True)
            return self.state
        self.state = BudgetState(
            limit=self.limit,
            remaining=max(self.limit - int(spent), 0),
            reset=max(reset, 1),
            charged=bool(charged),
        )
        return self.state
