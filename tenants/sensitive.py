"""How sensitive resident fields look when the caller may not see them whole."""

from __future__ import annotations


def mask_id_number(value: str | None) -> str | None:
    """110101199003071234 -> 110101********1234 (area code and last four stay)."""
    if not value:
        return value
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """13812345678 -> 138****5678."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
