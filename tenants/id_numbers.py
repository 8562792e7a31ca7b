"""Mainland resident identity numbers (居民身份证号码, GB 11643-1999).

Eighteen characters: a six-digit area code, the birth date as YYYYMMDD, a
three-digit sequence whose last digit is odd for men and even for women, and a
check character computed over the first seventeen.
"""

from __future__ import annotations

import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_character(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise(id_number: str) -> str:
    """Upper-case the check character and strip spaces, as clerks type them."""
    return id_number.strip().replace(" ", "").upper()


def is_well_formed(id_number: str) -> bool:
    return bool(_SHAPE.fullmatch(id_number))


def has_valid_checksum(id_number: str) -> bool:
    return is_well_formed(id_number) and check_character(id_number[:17]) == id_number[17]


def birth_date(id_number: str) -> date | None:
    """The birth date encoded in the number, or None when it is not a real date."""
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def gender(id_number: str) -> str:
    return "male" if int(id_number[16]) % 2 else "female"


def compose(area_code: str, born: date, sequence: int) -> str:
    """Build a valid number; `sequence` (0-999) decides gender by its parity."""
    first17 = f"{area_code}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
