"""Small pieces the village query modules share: text search patterns and rows grouped by key."""

from __future__ import annotations

from collections.abc import Iterable


def like_pattern(text: str) -> str:
    """`%text%` for LIKE/ILIKE with `\\` as the escape, so user input matches literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def grouped(rows: Iterable, column: str) -> dict[int, list[dict]]:
    """Rows (mappings) as lists keyed by one column, in the order they came."""
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row[column], []).append(dict(row))
    return found
