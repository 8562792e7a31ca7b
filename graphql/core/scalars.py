"""Date as ISO 8601; DateTime as RFC 3339 on the village's clock (+08:00), the one rule
for every moment the API shows (docs/api.md); JSON as it comes."""

from __future__ import annotations

from datetime import date, datetime

from ariadne import ScalarType

from villagelink.graphql.core.errors import BadUserInput
from villagelink.tenants.clock import local

date_scalar = ScalarType("Date")
datetime_scalar = ScalarType("DateTime")
# Free-form JSON (e.g. what else a device said with an event): objects, lists and
# scalars pass through as they are, in variables and in literals alike.
json_scalar = ScalarType("JSON")


@date_scalar.serializer
def _serialize_date(value: date) -> str:
    return value.isoformat()


@date_scalar.value_parser
def _parse_date(value: str) -> date:
    # A ValueError here becomes an input error naming the variable or argument.
    return date.fromisoformat(value)


@datetime_scalar.serializer
def _serialize_datetime(value: datetime) -> str:
    """Every DateTime of the API, whatever clock the database or a payload used: the
    same instant on the village's clock, so a console shows it as it comes."""
    if value.tzinfo is None:
        # A moment without an offset would be read on some server's clock: never shown.
        raise TypeError("a DateTime without a UTC offset")
    return local(value).isoformat()


def moment_argument(raw: str | None, argument: str) -> datetime | None:
    """A DateTime given as an argument, with its UTC offset: a time without one would be
    read on the server's clock, not the village's."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadUserInput(f"{argument} is not an ISO 8601 date-time", argument=argument) from exc
    if moment.tzinfo is None:
        raise BadUserInput(f"{argument} needs a UTC offset", argument=argument)
    return moment
