"""One rule for every field that carries an ID number or a phone.

The SDL marks such a field `@sensitive(kind: ID_NUMBER | PHONE)`; every marked field takes
`unmasked: Boolean = false, reason: String`, except a number given to be called
(`forContact: true`: an emergency contact, a resource's contact), shown whole to whoever may
read its record. `guard_sensitive_fields` wraps the resolver of each
marked field, once, when the schema is built: the field's own resolver only fetches the whole
value, and the guard decides what the caller sees. Masked for everyone by default; whole only
with `unmasked: true`, a reason (`tenants/sensitive.is_reason`) and the right to unmask in the
record's village (its admin), and then noted for the audit log with that reason.

The object a marked field hangs off carries the record's `village` and `id`, so the guard
knows whose rule applies and what the audit entry is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLSchema,
    default_field_resolver,
    is_object_type,
)
from villagelink.graphql.core.directives import directive_arguments
from villagelink.graphql.core.errors import BadUserInput, Forbidden
from villagelink.tenants.sensitive import REASON_REQUIRED, is_reason, mask_id_number, mask_phone

SENSITIVE = "sensitive"
MASKS: dict[str, Callable[[str | None], str | None]] = {
    "ID_NUMBER": mask_id_number,
    "PHONE": mask_phone,
}


@dataclass(frozen=True)
class Marking:
    """A field's `@sensitive` directive."""

    kind: str  # ID_NUMBER or PHONE
    for_contact: bool


def sensitive_marking(definition: GraphQLField) -> Marking | None:
    """The field's `@sensitive` directive, or None when the field is not marked."""
    given = directive_arguments(definition, SENSITIVE)
    if given is None:
        return None
    return Marking(kind=given["kind"], for_contact=bool(given.get("forContact", False)))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _guarded(
    resolve: Callable[..., Any], kind: str, type_name: str, field_name: str
) -> Callable[..., Any]:
    """Masked unless unmasked with a reason by the record's village admin, and audited."""
    mask = MASKS[kind]
    action = f"{_snake(type_name)}.read_unmasked"
    column = _snake(field_name)

    def resolve_sensitive(
        parent: Any, info: Any, unmasked: bool = False, reason: str | None = None, **arguments: Any
    ) -> Any:
        value = resolve(parent, info, **arguments)
        if not unmasked or value is None:
            return mask(value)
        if not is_reason(reason):
            raise BadUserInput(REASON_REQUIRED, argument="reason")
        village = parent["village"]
        if not info.context.access.can_unmask(village):
            raise Forbidden("only the village's admin may read this field unmasked")
        info.context.note_read(village, action, type_name, parent["id"], [column], reason)
        return value

    resolve_sensitive.guards_sensitive = kind  # type: ignore[attr-defined]
    return resolve_sensitive


def _for_contact(resolve: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """Whole to whoever may read the record: reaching the record is the rule (and its
    read is audited where the record's own rule says so)."""

    def resolve_contact(parent: Any, info: Any, **arguments: Any) -> Any:
        return resolve(parent, info, **arguments)

    resolve_contact.guards_sensitive = kind  # type: ignore[attr-defined]
    return resolve_contact


def guard_sensitive_fields(schema: GraphQLSchema) -> GraphQLSchema:
    """Wrap every `@sensitive` field's resolver in the one rule (in place; returns the schema)."""
    for named in schema.type_map.values():
        # Interfaces resolve nothing themselves: their objects' fields are wrapped.
        if not is_object_type(named):
            continue
        for name, definition in named.fields.items():
            marking = sensitive_marking(definition)
            if marking is None:
                continue
            resolve = definition.resolve or default_field_resolver
            definition.resolve = (
                _for_contact(resolve, marking.kind)
                if marking.for_contact
                else _guarded(resolve, marking.kind, named.name, name)
            )
    return schema
