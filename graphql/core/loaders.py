"""Batch loading for synchronous resolvers: no N+1 without an event loop.

A list resolver announces the keys its rows will ask for (`expect`); the first
`load` of any key then fetches every announced key in one query and answers the
rest from the cache. The number of statements for a page is therefore fixed,
whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar, cast

K = TypeVar("K")
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    def __init__(self, fetch_many: Callable[[list[K]], Mapping[K, V]]):
        self._fetch_many = fetch_many
        self._cache: dict[K, V | None] = {}
        # Announced batches, merged at the first load: a page announces its 50 keys to
        # every loader a field of its rows might use (seven for residents), and most of
        # them are never asked (filtering each batch key by key was a twentieth of a page).
        self._announced: list[tuple[K | None, ...]] = []

    def expect(self, keys: Iterable[K | None]) -> None:
        self._announced.append(tuple(keys))

    def load(self, key: K | None) -> V | None:
        if key is None:
            return None
        if key not in self._cache:
            pending = {key}.union(*self._announced)
            pending.discard(None)
            # Cleared before the fetch: a fetch may announce keys for the next batch
            # (parents). Keys already known (fetched or primed) are not asked again.
            self._announced.clear()
            wanted = cast(list[K], list(pending.difference(self._cache)))
            found = self._fetch_many(wanted)
            for k in wanted:
                self._cache[k] = found.get(k)
            # A fetch may answer more than it was asked (a small table read whole): those
            # keys are answered too, or each would cost a query of its own later.
            for k, value in found.items():
                self._cache.setdefault(k, value)
        return self._cache[key]

    def prime(self, key: K, value: V | None) -> None:
        self._cache[key] = value
