"""The schema as a contract (docs/api.md): the committed SDL is the live schema's, and no
breaking change against the released baseline goes unlisted in docs/api-changes.md."""

from __future__ import annotations

import warnings

from click.testing import CliRunner

from graphql import build_schema
from villagelink.graphql.core.contract import (
    BASELINE_FILE,
    PRINT_COMMAND,
    SCHEMA_FILE,
    printed_schema,
    read_entries,
    review,
    review_files,
)
from villagelink.graphql.core.schema import executable_schema
from villagelink.platform.cli import main

BASELINE = """
directive @label(zh: String!) on ENUM_VALUE

enum State {
  OPEN @label(zh: "待办")
  CLOSED @label(zh: "已办")
}

type Query {
  village(slug: String!): Village
  villages(first: Int = 20): [Village!]!
}

type Village {
  name: String!
  nameEn: String @deprecated(reason: "use name")
  state: State!
}
"""


def test_the_committed_schema_is_the_live_one():
    assert printed_schema(executable_schema()) == SCHEMA_FILE.read_text(), (
        f"the schema changed: run `{PRINT_COMMAND}` and commit {SCHEMA_FILE.name}"
    )


def test_schema_print_writes_the_live_sdl_with_its_directives():
    printed = CliRunner().invoke(main, ["schema", "print"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == printed_schema(executable_schema())
    # Sorted, and the directives applied in the SDL are part of it.
    assert "directive @sensitive(" in printed.output
    assert "@sensitive(kind: ID_NUMBER)" in printed.output
    assert '@label(zh: "已确认")' in printed.output
    # Printing what was printed changes nothing: the file is its own fixed point.
    assert printed_schema(build_schema(printed.output)) == printed.output


def test_no_unlisted_breaking_change_against_the_released_contract():
    outcome = review_files(executable_schema())
    for change in outcome.unlisted_dangerous:
        warnings.warn(f"dangerous schema change: {change.kind} {change.description}", stacklevel=1)
    assert outcome.malformed_entries == []
    assert outcome.unlisted_breaking == [], (
        f"breaking changes against {BASELINE_FILE.name}: deprecate first, or list them in "
        "docs/api-changes.md (docs/api.md, Deprecations)"
    )


def test_schema_check_command_passes_on_the_committed_files():
    checked = CliRunner().invoke(main, ["schema", "check"])
    assert checked.exit_code == 0, checked.output
    assert "no unlisted breaking change" in checked.output


def live(sdl: str):
    return build_schema(sdl)


def test_a_removed_field_fails_until_it_is_listed():
    removed = live(BASELINE.replace('  nameEn: String @deprecated(reason: "use name")\n', ""))
    outcome = review(BASELINE, removed, "")
    assert [(c.kind, c.description) for c in outcome.unlisted_breaking] == [
        ("FIELD_REMOVED", "Field Village.nameEn was removed.")
    ]
    assert not outcome.passes
    listed = "- BREAKING: FIELD_REMOVED Village.nameEn - deprecated 2026-09-01 for name\n"
    assert review(BASELINE, removed, listed).passes
    # The coordinate is matched whole: a listing of another field covers nothing here.
    assert not review(BASELINE, removed, listed.replace("nameEn", "name")).passes
    # An entry of the wrong kind, or as dangerous, does not either.
    assert not review(BASELINE, removed, listed.replace("FIELD_REMOVED", "TYPE_REMOVED")).passes
    assert not review(BASELINE, removed, listed.replace("BREAKING", "DANGEROUS")).passes


def test_every_kind_of_breaking_change_is_caught():
    broken = live(
        BASELINE.replace('  CLOSED @label(zh: "已办")\n', "")
        .replace("village(slug: String!)", "village(slug: String!, region: String!)")
        .replace("  state: State!", "  state: String!")
    )
    outcome = review(BASELINE, broken, "")
    assert {c.kind for c in outcome.unlisted_breaking} == {
        "VALUE_REMOVED_FROM_ENUM",
        "REQUIRED_ARG_ADDED",
        "FIELD_CHANGED_KIND",
    }
    entries = "\n".join(
        [
            "- BREAKING: VALUE_REMOVED_FROM_ENUM State.CLOSED - merged into OPEN",
            "- BREAKING: REQUIRED_ARG_ADDED Query.village(region:) - slugs repeat across regions",
            "- BREAKING: FIELD_CHANGED_KIND Village.state - free text now",
        ]
    )
    assert review(BASELINE, broken, entries).passes


def test_dangerous_changes_are_reported_and_do_not_fail():
    widened = live(
        BASELINE.replace(
            '  CLOSED @label(zh: "已办")\n', '  CLOSED @label(zh: "已办")\n  HELD\n'
        ).replace("villages(first: Int = 20)", "villages(first: Int = 50)")
    )
    outcome = review(BASELINE, widened, "")
    assert outcome.passes
    assert {c.kind for c in outcome.unlisted_dangerous} == {
        "VALUE_ADDED_TO_ENUM",
        "ARG_DEFAULT_VALUE_CHANGE",
    }
    listed = "- DANGEROUS: VALUE_ADDED_TO_ENUM State.HELD - a held case\n"
    assert [c.kind for c in review(BASELINE, widened, listed).unlisted_dangerous] == [
        "ARG_DEFAULT_VALUE_CHANGE"
    ]


def test_a_malformed_entry_fails_rather_than_listing_nothing():
    entries, malformed = read_entries(
        "- BREAKING: FIELD_REMOVED Village.nameEn\n"  # no reason
        "- BREAKING: field_removed Village.nameEn - lower case kind\n"
        "    - BREAKING: <KIND> <coordinate> - an indented example is not an entry\n"
        "- DANGEROUS: VALUE_ADDED_TO_ENUM State.HELD - fine\n"
    )
    assert [e.coordinate for e in entries] == ["State.HELD"]
    assert len(malformed) == 2
    assert not review(BASELINE, live(BASELINE), malformed[0]).passes
