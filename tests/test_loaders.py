"""BatchLoader (graphql/core/loaders.py): what is announced is fetched in one batch at the
first load, less what is known already."""

from __future__ import annotations

from villagelink.graphql.core.loaders import BatchLoader


def _loader(fetches: list[list[int]], extra: dict | None = None) -> BatchLoader:
    def fetch(keys: list[int]) -> dict:
        fetches.append(sorted(keys))
        return {**{k: f"row {k}" for k in keys if k != 404}, **(extra or {})}

    return BatchLoader(fetch)


def test_every_announced_key_comes_in_the_first_load_s_one_fetch():
    fetches: list[list[int]] = []
    loader = _loader(fetches)
    loader.expect([1, 2, None])
    loader.expect(k for k in (3, 2))
    loader.prime(4, "primed")
    loader.expect([4, 404])
    assert loader.load(5) == "row 5"
    assert loader.load(4) == "primed" and loader.load(3) == "row 3"
    assert loader.load(404) is None and loader.load(None) is None
    # None and the primed key never asked for; a missing row not asked for twice.
    assert fetches == [[1, 2, 3, 5, 404]]


def test_a_generator_is_read_when_announced_not_when_loaded():
    fetches: list[list[int]] = []
    loader = _loader(fetches)
    rows = [{"id": 1}]
    loader.expect(r["id"] for r in rows)
    rows.append({"id": 2})
    loader.load(1)
    assert fetches == [[1]]


def test_keys_announced_after_a_fetch_make_the_next_batch():
    fetches: list[list[int]] = []
    loader = _loader(fetches, extra={9: "row 9"})
    loader.expect([1, 2])
    loader.load(1)
    # A fetch may answer keys it was not asked for: they are known from then on.
    loader.expect([2, 3, 9])
    assert loader.load(3) == "row 3" and loader.load(9) == "row 9"
    assert fetches == [[1, 2], [3]]
