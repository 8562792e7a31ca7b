"""The schema as a contract: its printed SDL, and the changes between two of them.

`printed_schema` is what `villagelink schema print` writes and what docs/schema.graphql
holds: the schema sorted by name (so the file changes only where the schema does), with
its descriptions, directive definitions and the directives applied in the SDL
(`@label(zh:)`, `@sensitive`, `@listSize`, `@deprecated`), which introspection alone
does not show.

`contract_changes` compares the released contract (docs/schema.baseline.graphql) with the
live schema by graphql-core's `find_schema_changes`. A breaking change must be listed in
docs/api-changes.md as `- BREAKING: <KIND> <coordinate> - <reason>` (the kind is
graphql-core's `BreakingChangeType` name, the coordinate the schema coordinate its
description names: `Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`, `@directive`);
a dangerous one is reported, and listed the same way with `DANGEROUS:`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql.language import (
    EnumTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
)
from graphql.utilities.find_schema_changes import (
    BreakingChange,
    DangerousChange,
    find_schema_changes,
)

from graphql import (
    DocumentNode,
    GraphQLSchema,
    build_schema,
    lexicographic_sort_schema,
    parse,
    print_ast,
    print_schema,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA_FILE = DOCS / "schema.graphql"
BASELINE_FILE = DOCS / "schema.baseline.graphql"
CHANGES_FILE = DOCS / "api-changes.md"
PRINT_COMMAND = "villagelink schema print --write"

BREAKING, DANGEROUS = "BREAKING", "DANGEROUS"
# `- BREAKING: FIELD_REMOVED Village.oldName - replaced by name (2027-03-01)`
ENTRY = re.compile(
    r"^- (?P<severity>BREAKING|DANGEROUS): (?P<kind>[A-Z_]+) (?P<coordinate>\S+)"
    r" - (?P<reason>\S.*)$"
)
ENTRY_START = re.compile(r"^- (BREAKING|DANGEROUS)\b")


def printed_schema(schema: GraphQLSchema) -> str:
    """The SDL of `schema`, sorted by name, with the directives its SDL applies."""
    ordered = lexicographic_sort_schema(schema)
    document = parse(print_schema(ordered))
    definitions = tuple(_with_applied(node, ordered) for node in document.definitions)
    return print_ast(DocumentNode(definitions=definitions)) + "\n"


_WITH_FIELDS = (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)


def _with_applied(node: Any, schema: GraphQLSchema) -> Any:
    """The printed definition with the directives applied to its fields, arguments, input
    fields and enum values in the source SDL (print_schema keeps only `@deprecated`)."""
    # The printed node's kind says which the live type is (fields, values); Any for both.
    named: Any = schema.type_map.get(node.name.value) if hasattr(node, "name") else None
    if named is None:
        return node
    if isinstance(node, _WITH_FIELDS):
        fields = tuple(
            _applied(
                dataclasses.replace(
                    field,
                    arguments=tuple(
                        _applied(argument, named.fields[field.name.value].args)
                        for argument in field.arguments or ()
                    ),
                ),
                named.fields,
            )
            for field in node.fields or ()
        )
        return dataclasses.replace(node, fields=fields)
    if isinstance(node, InputObjectTypeDefinitionNode):
        return dataclasses.replace(
            node, fields=tuple(_applied(f, named.fields) for f in node.fields or ())
        )
    if isinstance(node, EnumTypeDefinitionNode):
        return dataclasses.replace(
            node, values=tuple(_applied(v, named.values) for v in node.values or ())
        )
    return node


def _applied(node: Any, live: dict[str, Any]) -> Any:
    source = getattr(live.get(node.name.value), "ast_node", None)
    given = (source.directives if source else None) or ()
    extra = tuple(d for d in given if d.name.value != "deprecated")
    if not extra:
        return node
    return dataclasses.replace(node, directives=(*(node.directives or ()), *extra))


@dataclass(frozen=True)
class Change:
    severity: str  # BREAKING or DANGEROUS
    kind: str  # graphql-core's change type name, e.g. FIELD_REMOVED
    description: str

    def listed_by(self, entry: Entry) -> bool:
        """Whether the entry names this change: its severity, kind and the coordinate its
        description names (whole, so `Query.a` does not cover `Query.ab` or `Query.a(x:)`)."""
        coordinate = re.escape(entry.coordinate)
        return (entry.severity, entry.kind) == (self.severity, self.kind) and re.search(
            rf"(?<![\w.@]){coordinate}(?![\w(]|\.\w)", self.description
        ) is not None


@dataclass(frozen=True)
class Entry:
    severity: str
    kind: str
    coordinate: str
    reason: str


def read_entries(text: str) -> tuple[list[Entry], list[str]]:
    """The entries of docs/api-changes.md, and the lines that start like one but do not
    parse (a typo must not quietly leave a change unlisted). An entry starts its line:
    indented lines are examples."""
    entries, malformed = [], []
    for line in text.splitlines():
        match = ENTRY.match(line.rstrip())
        if match:
            entries.append(Entry(**match.groupdict()))
        elif ENTRY_START.match(line):
            malformed.append(line.rstrip())
    return entries, malformed


def contract_changes(baseline_sdl: str, schema: GraphQLSchema) -> list[Change]:
    """The breaking and dangerous changes from the released contract to `schema`."""
    changes = find_schema_changes(build_schema(baseline_sdl), schema)
    return [
        Change(
            BREAKING if isinstance(change, BreakingChange) else DANGEROUS,
            change.type.name,
            change.description,
        )
        for change in changes
        if isinstance(change, (BreakingChange, DangerousChange))
    ]


@dataclass(frozen=True)
class Review:
    """The contract's changes against its listing: what blocks a merge, what to look at."""

    unlisted_breaking: list[Change]
    unlisted_dangerous: list[Change]
    malformed_entries: list[str]

    @property
    def passes(self) -> bool:
        return not self.unlisted_breaking and not self.malformed_entries


def review(baseline_sdl: str, schema: GraphQLSchema, changes_text: str) -> Review:
    entries, malformed = read_entries(changes_text)
    changes = contract_changes(baseline_sdl, schema)
    unlisted = [c for c in changes if not any(c.listed_by(e) for e in entries)]
    return Review(
        unlisted_breaking=[c for c in unlisted if c.severity == BREAKING],
        unlisted_dangerous=[c for c in unlisted if c.severity == DANGEROUS],
        malformed_entries=malformed,
    )


def review_files(schema: GraphQLSchema) -> Review:
    """`review` of the live schema against the committed baseline and api-changes.md."""
    return review(BASELINE_FILE.read_text(), schema, CHANGES_FILE.read_text())
