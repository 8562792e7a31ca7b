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

Redis is not asked on every request: each process leases a caller's budget from it in
slices (at least what the charge needs, else LEASE_SHARE of the limit, never more than is
left) and charges requests from its slice until it runs short. A caller can therefore
never spend more than the limit; what one process holds unspent counts as spent for the
others, so a caller spread over P processes may be refused up to P slices (P% of the
limit) early. With one process the figures are exact.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

MIN_CHARGE = 100
WINDOW_SECONDS = 60

# Leases between ARGV[1] (what the charge needs) and ARGV[2] (a slice) of the window's key,
# as much as is left under ARGV[3]; nothing if not even ARGV[1] fits. Answers what it leased
# and what has been spent (leased) in all. Atomic: processes cannot lease more than the limit.
LEASE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local room = tonumber(ARGV[3]) - spent
if room < tonumber(ARGV[1]) then
  return {0, spent}
end
local lease = math.min(tonumber(ARGV[2]), room)
spent = redis.call('INCRBY', KEYS[1], lease)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {lease, spent}
"""
# A slice: this share of the limit (at least MIN_CHARGE) per lease.
LEASE_SHARE = 0.01


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


class Allowances:
    """What this process has leased of each caller's budget in the current window and not
    yet charged to a request, and what Redis said was leased in all when last asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: int | None = None
        self._held: dict[str, tuple[int, int]] = {}  # key -> (unspent, leased in all)

    def _current(self, window: int) -> None:
        if window != self._window:  # a new minute: the last one's slices are gone
            self._window, self._held = window, {}

    def spend(self, key: str, window: int, amount: int) -> tuple[bool, int, int]:
        """Charge `amount` to the local slice if it holds it: (charged, unspent after,
        leased in all); leased in all is -1 when Redis has not been asked yet."""
        with self._lock:
            self._current(window)
            unspent, leased = self._held.get(key, (0, -1))
            if unspent < amount:
                return False, unspent, leased
            self._held[key] = (unspent - amount, leased)
            return True, unspent - amount, leased

    def add(self, key: str, window: int, lease: int, leased: int, amount: int) -> tuple[bool, int]:
        """Add a slice of `lease` (Redis: `leased` in all) and charge `amount` to it if the
        slice now holds it: (charged, unspent after)."""
        with self._lock:
            self._current(window)
            unspent, seen = self._held.get(key, (0, -1))
            unspent += lease
            charged = lease > 0 and unspent >= amount
            if charged:
                unspent -= amount
            self._held[key] = (unspent, max(seen, leased))
            return charged, unspent


class Budget:
    """One request's view of its caller's budget: charges, and the state after the last."""

    def __init__(
        self, client: redis.Redis, allowances: Allowances, caller: str, limit: int
    ) -> None:
        self.client, self.allowances, self.limit = client, allowances, limit
        self.window = int(time.time() // WINDOW_SECONDS)
        # The limit is part of the key: processes configured with different limits (a
        # rolling change of it, two apps in one test run) never count against each other's
        # slices, which are a share of their own limit.
        self.key = f"villagelink:budget:{caller}:{limit}:{self.window}"
        self.slice = max(MIN_CHARGE, int(limit * LEASE_SHARE))
        self.state: BudgetState | None = None

    def charge(self, amount: int) -> BudgetState | None:
        """Charge `amount` if the budget holds it; the state after, or None when Redis
        cannot tell (nothing charged, the request goes on)."""
        reset = (self.window + 1) * WINDOW_SECONDS - int(time.time())
        charged, unspent, leased = self.allowances.spend(self.key, self.window, amount)
        # Another request of the caller's in this process may spend from the slice between
        # the lease and its addition (a console loads a screen's documents side by side):
        # then the slice is kept and the charge leases again. Only a lease Redis refuses
        # refuses the request, so it is refused only when the budget cannot hold it.
        while not charged:
            need = amount - unspent
            try:
                lease, leased = self.client.register_script(LEASE)(
                    keys=[self.key],
                    args=[need, max(need, self.slice), self.limit, WINDOW_SECONDS * 2],
                )
            except redis.RedisError as error:
                # Redis restarting: one line a request, not a traceback.
                log.warning("rate budget unavailable (%s); request allowed", error)
                return self.state
            charged, unspent = self.allowances.add(
                self.key, self.window, int(lease), int(leased), amount
            )
            if not lease:
                break
        self.state = BudgetState(
            limit=self.limit,
            # What this process holds unspent is still the caller's to spend.
            remaining=max(self.limit - int(leased) + unspent, 0),
            reset=max(reset, 1),
            charged=charged,
        )
        return self.state
