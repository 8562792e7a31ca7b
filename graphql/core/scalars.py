"""Date and DateTime as ISO 8601 strings."""

from __future__ import annotations

from datetime import date, datetime

from ariadne import ScalarType

date_scalar = ScalarType("Date")
datetime_scalar = ScalarType("DateTime")


@date_scalar.serializer
def _serialize_date(value: date) -> str:
    return value.isoformat()


@date_scalar.value_parser
def _parse_date(value: str) -> date:
    # A ValueError here becomes an input error naming the variable or argument.
    return date.fromisoformat(value)


@datetime_scalar.serializer
def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()
