"""The gateway's memory of the bearer tokens it has checked, per process.

A token that passed `TokenVerifier.verify` is not verified again on every request: its
claims are kept (the times are still checked on every use) for at most as long as the
verifier keeps its signing keys, so a key taken out of the JWKS stops being honoured no
later than it would without this memory. A failed check is never kept.

For reads, and for the mutations marked `runs_again_safely` (the device platforms'
ingest: graphql/core/context.py), the caller's reach and villages (platform/access.py,
read from the platform tables) are kept with the token too, stamped with the access
epoch they were read at (migration ac0001: triggers move it with every change to
villages, regions and API client grants). A request using a kept reach reads the epoch
in its own transaction (`Database.begin_tenant`) and, when it has moved, the gateway
forgets every kept reach and runs the request again on a fresh one (graphql/gateway.py):
a change is honoured from the first request that starts after it commits, as when the
reach was read on every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from villagelink.platform.access import Access
from villagelink.platform.identity.principal import Principal
from villagelink.platform.identity.tokens import TokenVerifier

# Tokens remembered per process: the callers of the last minutes, with room to spare.
CALLERS_KEPT = 4096


@dataclass(frozen=True)
class Reach:
    """A caller's reach and villages as read from the platform tables at `epoch`."""

    access: Access
    villages: dict[str, dict]
    epoch: int


@dataclass
class _Caller:
    claims: dict
    principal: Principal
    checked_until: float
    reach: Reach | None = None


class Callers:
    def __init__(self, verifier: TokenVerifier, recheck_seconds: float) -> None:
        self.verifier = verifier
        self.recheck_seconds = recheck_seconds
        self._kept: OrderedDict[str, _Caller] = OrderedDict()
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal:
        """The token's principal; `InvalidToken` when it is not (or no longer) valid."""
        now = time.monotonic()
        with self._lock:
            caller = self._kept.get(token)
            if caller is not None:
                self._kept.move_to_end(token)
        if caller is not None and now < caller.checked_until:
            self.verifier.check_times(caller.claims)
            return caller.principal
        claims = self.verifier.verify(token)
        principal = Principal.from_claims(claims)
        with self._lock:
            self._kept[token] = _Caller(claims, principal, now + self.recheck_seconds)
            while len(self._kept) > CALLERS_KEPT:
                self._kept.popitem(last=False)
        return principal

    def reach(self, token: str) -> Reach | None:
        with self._lock:
            caller = self._kept.get(token)
            return caller.reach if caller is not None else None

    def remember_reach(self, token: str, reach: Reach) -> None:
        with self._lock:
            caller = self._kept.get(token)
            if caller is not None:
                caller.reach = reach

    def forget_reaches(self) -> None:
        """The access epoch moved: no kept reach can be trusted any more."""
        with self._lock:
            for caller in self._kept.values():
                caller.reach = None
