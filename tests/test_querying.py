"""Ids given to ANY as the text of an array (tenants/querying.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.exc import StatementError

from villagelink.graphql.core.ids import BIGINT_MAX
from villagelink.tenants.querying import any_ids


def matching(db, slug: str, ids) -> list[int]:
    """Which of 1, 2, 3 and BIGINT_MAX are among `ids`."""
    numbers = cast(array([1, 2, 3, BIGINT_MAX]), ARRAY(BigInteger))
    inner = select(func.unnest(numbers).label("n")).subquery()
    with db.tenant(slug) as conn:
        statement = select(inner.c.n).where(inner.c.n == any_ids(key="ids")).order_by(inner.c.n)
        return list(conn.execute(statement, {"ids": ids}).scalars())


def test_ids_reach_postgresql_as_the_array_they_are(db, shared_village):
    assert matching(db, shared_village.slug, [3, BIGINT_MAX, 1]) == [1, 3, BIGINT_MAX]
    assert matching(db, shared_village.slug, []) == []
    assert matching(db, shared_village.slug, (n for n in (2,))) == [2]


@pytest.mark.parametrize("given", [["1,2"], ["1}"], [None], ["x"], [1.5j]])
def test_only_numbers_reach_the_text(db, shared_village, given):
    with pytest.raises(StatementError):
        matching(db, shared_village.slug, given)
