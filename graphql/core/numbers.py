"""The one range check for numbers read from arguments and filters.

GraphQL's Int holds any 32-bit value and Float any double, far beyond what a column
(a smallint year), a date (an age in years) or a page holds: a number outside its
meaningful range is the caller's mistake, refused as BAD_USER_INPUT naming the
argument, before it can reach the database as an error. (Mutation inputs are checked
the same way by their marshmallow schemas, which answer with userErrors.)
"""

from __future__ import annotations

from villagelink.graphql.core.errors import BadUserInput


def within(value: int | None, argument: str, low: int, high: int) -> int | None:
    """`value` if it is absent or in [low, high]; else BAD_USER_INPUT on `argument`
    (a dotted path such as "filter.year"; the message names its last part)."""
    if value is not None and not low <= value <= high:
        name = argument.rsplit(".", 1)[-1]
        raise BadUserInput(f"{name} 须在 {low} 到 {high} 之间", argument=argument)
    return value
