"""Why an action refused its input: field, message (Chinese, for the person at the
console) and a stable code (English, for programs). Mutations return them as
`userErrors`; nothing is written when there is one."""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema, ValidationError

REQUIRED = "REQUIRED"
INVALID = "INVALID"
NOT_FOUND = "NOT_FOUND"
DUPLICATE = "DUPLICATE"
MISMATCH = "MISMATCH"
# A state machine refused the step from the record's current state.
INVALID_TRANSITION = "INVALID_TRANSITION"
# The record is archived (归档): kept for what points at it, closed to new uses.
ARCHIVED = "ARCHIVED"


class Coded(str):
    """A validation message that carries its code through marshmallow untouched."""

    code: str

    def __new__(cls, message: str, code: str) -> Coded:
        obj = super().__new__(cls, message)
        obj.code = code
        return obj


@dataclass(frozen=True)
class UserError:
    field: str | None
    message: str
    code: str


class ActionFailed(Exception):
    def __init__(self, errors: list[UserError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def refused(field: str | None, message: str, code: str) -> ActionFailed:
    """An action's refusal for one reason, to raise: `raise refused("id", "…不存在", NOT_FOUND)`."""
    return ActionFailed([UserError(field, message, code)])


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def from_validation_error(error: ValidationError) -> ActionFailed:
    """The refusals of a marshmallow error, each naming its field by its whole path in
    the API's camelCase (`phone`, `parties.1.phone`, `consent.givenBy`): the console
    shows a message next to the field it names, in a list the entry at fault."""
    found: list[UserError] = []

    def walk(messages, field: str | None) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                if key == "_schema":
                    walk(value, field)
                else:
                    name = camel(str(key))
                    walk(value, name if field is None else f"{field}.{name}")
        elif isinstance(messages, list):
            for message in messages:
                walk(message, field)
        else:
            found.append(UserError(field, str(messages), getattr(messages, "code", INVALID)))

    walk(error.messages, None)
    return ActionFailed(found)


def validated(schema: Schema, data: dict) -> dict:
    """`schema.load(data)`, with a refusal turned into ActionFailed for the action to raise."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
