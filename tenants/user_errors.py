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
    found: list[UserError] = []

    def walk(messages, field: str | None) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                walk(value, camel(str(key)) if key != "_schema" else field)
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


def _by_path(messages: dict) -> dict:
    """Nested errors keyed by their whole path (`parties.1.phone`, `attendees.0`):
    `from_validation_error` would keep only the last name, and the console must be
    able to tell which entry of a list is at fault."""
    flat: dict = {}
    for key, value in messages.items():
        name = key if key == "_schema" else camel(str(key))
        if not isinstance(value, dict):
            flat[name] = value
            continue
        for inner, found in _by_path(value).items():
            flat[name if inner == "_schema" else f"{name}.{inner}"] = found
    return flat


def validated_nested(schema: Schema, data: dict) -> dict:
    """`validated` for inputs with nested objects or lists: each userError names its
    field by its whole path (`emergencyContacts.1.phone`)."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise from_validation_error(ValidationError(_by_path(exc.messages))) from exc
