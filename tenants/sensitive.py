"""How sensitive resident fields look when the caller may not see them whole."""

from __future__ import annotations


def _mask(value: str | None, keep_head: int, keep_tail: int) -> str | None:
    if not value:
        return value
    if len(value) <= keep_head + keep_tail + 3:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def mask_id_number(value: str | None) -> str | None:
    """110101199003071234 -> 110101********1234 (area code and last four stay)."""
    return _mask(value, 6, 4)


def mask_phone(value: str | None) -> str | None:
    """13812345678 -> 138****5678."""
    return _mask(value, 3, 4)
