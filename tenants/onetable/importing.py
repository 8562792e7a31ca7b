"""Importing rows of the residents sheet through the resident actions.

A row is checked against the same rules as the console's (the resident
schemas, then the actions themselves), and written inside a savepoint of its
own: the resident, the household made for them and their tags go in together
or not at all. A row whose ID number is registered already updates that
resident, and only what differs, so a second import of the same sheet changes
nothing. Blank cells change nothing either: an import never erases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema
from sqlalchemy import Connection

from villagelink.platform.audit import Actor
from villagelink.tenants import id_numbers
from villagelink.tenants.onetable.queries import Places, Registered, household_at
from villagelink.tenants.onetable.sheet import (
    BIRTH_DATE,
    BUILDING,
    COLUMNS,
    GENDER,
    GRID,
    HOUSEHOLD,
    ID_NUMBER,
    NAME,
    PHONE,
    RELATION,
    RESIDENT_NO,
    ROOM,
    TAGS,
    UNIT,
    Problem,
    RowInput,
    SheetRow,
    masked,
)
from villagelink.tenants.residents.actions import (
    do_create_resident,
    do_move_resident_to_household,
    do_tag_resident,
    do_update_resident,
)
from villagelink.tenants.residents.validation import NewResidentSchema, TagSchema
from villagelink.tenants.sensitive import mask_id_number, mask_phone
from villagelink.tenants.structure.actions import do_create_household
from villagelink.tenants.user_errors import ActionFailed, validated

IMPORTED = "imported"
UPDATED = "updated"
UNCHANGED = "unchanged"
FAILED = "failed"
OUTCOMES = (IMPORTED, UPDATED, UNCHANGED, FAILED)

# Where the fields the resident rules name are found in the sheet. The household
# field is the column the row used to name its household (楼号 or 户编号).
FIELD_COLUMNS = {
    "name": NAME,
    "idNumber": ID_NUMBER,
    "gender": GENDER,
    "birthDate": BIRTH_DATE,
    "phone": PHONE,
    "relationToHead": RELATION,
    "tag": TAGS,
    "level": TAGS,
    "note": TAGS,
    "unitNo": UNIT,
    "roomNo": ROOM,
}
HOUSEHOLD_FIELDS = ("householdId", "household")


@dataclass(frozen=True)
class RowOutcome:
    outcome: str
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class NewFlat:
    """A flat of a known building with no household yet: the row's household is made there."""

    building: dict
    unit_no: int
    room_no: str


Placement = dict | NewFlat | None


@dataclass(frozen=True)
class Repeat:
    """A row naming the same resident as an earlier one, and the column that says so."""

    first: int
    column: str


def _identity(row: SheetRow) -> tuple[str, str] | None:
    """Who a row names, for finding repeats: its ID number, or, where a masked export
    hid that, its resident number (masked numbers of two people can look alike)."""
    number = row.cells.get(ID_NUMBER)
    if number is not None and not masked(str(number)):
        return ID_NUMBER, id_numbers.normalise(str(number))
    resident_no = row.cells.get(RESIDENT_NO)
    return None if resident_no is None else (RESIDENT_NO, str(resident_no).strip())


def duplicate_rows(rows: Iterable[SheetRow]) -> dict[int, Repeat]:
    """Row number → the earlier row naming the same resident, for every repeat."""
    first: dict[tuple[str, str], int] = {}
    repeats: dict[int, Repeat] = {}
    for row in rows:
        identity = _identity(row)
        if identity is None:
            continue
        if identity in first:
            repeats[row.number] = Repeat(first[identity], identity[0])
        else:
            first[identity] = row.number
    return repeats


def duplicate_outcome(row: SheetRow, repeat: Repeat) -> RowOutcome:
    return RowOutcome(
        FAILED, (Problem(row.number, repeat.column, f"与第{repeat.first}行的{repeat.column}重复"),)
    )


# What a row may not change in a masked export's cells, and where to change it instead.
FULL_EXPORT = "完整导出（导出时选择显示完整号码）"


def identify(given: RowInput, registered: Registered) -> dict | None:
    """The registered resident a row speaks of (with their tags), or None for a new one.

    A masked export's cells are judged against that resident: a masked ID number names
    them through the resident number and must be theirs as masked; a masked phone that
    is theirs as masked is unchanged (as if blank). A masked cell the sheet cannot judge
    (no resident to compare with, or not theirs) is a problem of the row, naming the
    full export where the whole number is needed."""
    named = None
    if given.resident_no is not None:
        named = registered.by_id.get(given.resident_no)
        if named is None:
            given.problem(RESIDENT_NO, "居民编号不存在")
    if given.masked_id_number is not None:
        resident = None
        if named is None:
            given.problem(
                ID_NUMBER,
                f"身份证号码已打码，无法确定是哪位居民：请保留导出表中的居民编号，或使用{FULL_EXPORT}",
            )
        elif mask_id_number(named["id_number"]) != given.masked_id_number:
            given.problem(
                ID_NUMBER,
                f"身份证号码已打码，无法核对更改：更正身份证号码请使用{FULL_EXPORT}",
            )
        else:
            resident = named
            given.person["id_number"] = named["id_number"]
    else:
        number = given.person.get("id_number")
        resident = registered.by_id_number.get(id_numbers.normalise(number)) if number else None
        if named is not None and (resident is None or resident["id"] != named["id"]):
            given.problem(RESIDENT_NO, "居民编号与身份证号码所指的居民不一致")
    # Who the row is could not be told: that one problem says what to do.
    unidentified = given.masked_id_number is not None and resident is None
    if (
        given.masked_phone is not None
        and not unidentified
        and (resident is None or mask_phone(resident["phone"]) != given.masked_phone)
    ):
        given.problem(
            PHONE,
            f"联系电话已打码，无法判断是否更改：请填写完整号码或留空，核对完整号码请使用{FULL_EXPORT}",
        )
    return resident


def _in_column_order(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(
        sorted(problems, key=lambda p: -1 if p.column is None else COLUMNS.index(p.column))
    )


@dataclass(frozen=True)
class Changes:
    """What a row changes of a registered resident: fields for `do_update_resident`,
    whether they move (into the row's household, or to another relation in their
    own), and tags to add."""

    fields: dict[str, Any]
    move: bool
    relation: str | None
    tags: list[dict]


class RowImporter:
    """Imports the rows of one sheet into one village, in the caller's transaction."""

    def __init__(
        self, conn: Connection, actor: Actor, village: str, village_name: str, places: Places
    ):
        self.conn = conn
        self.actor = actor
        self.village = village
        self.village_name = village_name
        self.places = places
        # Loading keeps no state in a schema: one of each serves every row.
        self._person_schema = NewResidentSchema()
        self._tag_schema = TagSchema()

    def run(self, given: RowInput, registered: dict | None) -> RowOutcome:
        """Import one row; `registered` is the resident with its ID number, if any
        (with their `tags`)."""
        problems = list(given.problems)
        person = self._checked(self._person_schema, given.person, given.number, problems)
        tags = [self._checked(self._tag_schema, t, given.number, problems) for t in given.tags]
        place, place_column = self._placement(given, registered, problems)
        if problems:
            return RowOutcome(FAILED, _in_column_order(problems))
        changes = None
        if registered is not None:
            changes = _changes(registered, person, tags, place)
            if changes is None:
                return RowOutcome(UNCHANGED)
        try:
            with self.conn.begin_nested():
                household = self._household(place)
                if changes is None:
                    outcome = self._create(given.person, tags, household)
                else:
                    outcome = self._update(registered, changes, household)
        except ActionFailed as failed:
            return RowOutcome(
                FAILED,
                _in_column_order(
                    Problem(given.number, self._column(e.field, place_column), e.message)
                    for e in failed.errors
                ),
            )
        if isinstance(place, NewFlat):
            self.places.add_household(household)
        return RowOutcome(outcome)

    # -- checks, before anything is written ----------------------------------------

    def _checked(self, schema: Schema, data: dict, number: int, problems: list[Problem]) -> dict:
        """`data` loaded by the resident rules; what they refuse joins `problems`,
        except in a column whose cell could not even be read (said once is enough)."""
        unreadable = {p.column for p in problems}
        try:
            return validated(schema, data)
        except ActionFailed as failed:
            for e in failed.errors:
                column = self._column(e.field, None)
                if column not in unreadable:
                    problems.append(Problem(number, column, e.message))
            return {}

    @staticmethod
    def _column(field: str | None, place_column: str | None) -> str | None:
        if field in HOUSEHOLD_FIELDS:
            return place_column
        return FIELD_COLUMNS.get(field)

    def _placement(
        self, given: RowInput, registered: dict | None, problems: list[Problem]
    ) -> tuple[Placement, str | None]:
        """The household the row names (by flat, or by number), a flat where one is to
        be made, or None; and the column that named it."""
        place: Placement = None
        column = None
        if any(v is not None for v in (given.building, given.unit_no, given.room_no)):
            column = BUILDING
            place = self._flat(given, problems)
        elif given.household_no is not None:
            column = HOUSEHOLD
            place = self.places.households.get(given.household_no)
            if place is None:
                problems.append(Problem(given.number, HOUSEHOLD, "户不存在"))
        if given.grid_code is not None:
            current = self.places.households.get(registered["household_id"]) if registered else None
            self._check_grid(given, place if column else current, column, problems)
        return place, column

    def _flat(self, given: RowInput, problems: list[Problem]) -> Placement:
        """The household at 楼号/单元/室, or the flat where it is to be made: the
        building must exist. A 户编号 given as well must name the same household."""
        n = given.number
        flat = {BUILDING: given.building, UNIT: given.unit_no, ROOM: given.room_no}
        unreadable = {p.column for p in problems}
        missing = [c for c, v in flat.items() if v is None and c not in unreadable]
        problems += [Problem(n, c, "楼号、单元、室须一起填写") for c in missing]
        building = self.places.buildings.get(given.building)
        if given.building is not None and building is None:
            problems.append(Problem(n, BUILDING, "户不存在，且本村没有该楼，无法新建"))
        if building is None or None in flat.values():
            return None
        key = (building["id"], given.unit_no, given.room_no)
        place = self.places.households_by_flat.get(key) or NewFlat(
            building, given.unit_no, given.room_no
        )
        named = given.household_no
        if named is not None and (isinstance(place, NewFlat) or place["id"] != named):
            problems.append(Problem(n, HOUSEHOLD, "户编号与楼号、单元、室所指的户不一致"))
        return place

    def _check_grid(
        self, given: RowInput, place: Placement, column: str | None, problems: list[Problem]
    ) -> None:
        """网格编码 is a check: it must be the grid of the household the row ends up in."""
        n = given.number
        grid = self.places.grids.get(given.grid_code)
        if grid is None:
            problems.append(Problem(n, GRID, "网格不存在"))
        elif place is None:
            if column is None:
                problems.append(Problem(n, GRID, "填写网格编码时须同时指明所在户"))
        else:
            grid_id = place.building["grid_id"] if isinstance(place, NewFlat) else place["grid_id"]
            if grid["id"] != grid_id:
                problems.append(Problem(n, GRID, "网格编码与所在户的网格不一致"))

    # -- writes, inside the row's savepoint ---------------------------------------

    def _household(self, place: Placement) -> dict | None:
        """The row's household, made at its flat when there is none yet. The flat is
        looked up once more: another import of the village may have made it since
        this one read the village's households."""
        if not isinstance(place, NewFlat):
            return place
        found = household_at(self.conn, place.building["id"], place.unit_no, place.room_no)
        if found is not None:
            return found
        return do_create_household(
            self.conn,
            self.actor,
            self.village,
            {"unit_no": place.unit_no, "room_no": place.room_no},
            building_id=place.building["id"],
            grid_id=None,
            village_name=self.village_name,
        )

    def _create(self, person: dict[str, Any], tags: list[dict], household: dict | None) -> str:
        resident = do_create_resident(
            self.conn,
            self.actor,
            self.village,
            person,
            household_id=household["id"] if household else None,
            allowed_grids=None,
        )
        for tag in tags:
            do_tag_resident(
                self.conn, self.actor, self.village, resident["id"], tag, allowed_grids=None
            )
        return IMPORTED

    def _update(self, resident: dict, changes: Changes, household: dict | None) -> str:
        rid = resident["id"]
        if changes.fields:
            do_update_resident(
                self.conn, self.actor, self.village, rid, changes.fields, allowed_grids=None
            )
        if changes.move:
            target = household["id"] if household else resident["household_id"]
            do_move_resident_to_household(
                self.conn,
                self.actor,
                self.village,
                rid,
                target,
                changes.relation,
                allowed_grids=None,
            )
        for tag in changes.tags:
            do_tag_resident(self.conn, self.actor, self.village, rid, tag, allowed_grids=None)
        return UPDATED


def _changes(
    resident: dict, person: dict[str, Any], tags: list[dict], place: Placement
) -> Changes | None:
    """What the row says differently of a registered resident; None when nothing, so
    an unchanged row costs no write at all. Blank cells are not differences."""
    fields = {}
    if person["name"].strip() != resident["name"]:
        fields["name"] = person["name"]
    if person.get("phone") and person["phone"] != resident["phone"]:
        fields["phone"] = person["phone"]
    relation = person.get("relation_to_head")
    current = resident["household_id"]
    other_relation = relation is not None and relation != resident["relation_to_head"]
    if isinstance(place, NewFlat) or (place is not None and place["id"] != current):
        move = True
    elif other_relation and (place is not None or current is not None):
        move = True  # the same household, another relation: headship is the move's business
    else:
        move = False
        if other_relation:
            fields["relation_to_head"] = relation
    added = _new_tags(resident["tags"], tags)
    if not (fields or move or added):
        return None
    return Changes(fields, move, relation, added)


def _new_tags(held: list[dict], given: list[dict]) -> list[dict]:
    """Tags the resident lacks, or holds at another level (their note is kept)."""
    by_tag = {t["tag"]: t for t in held}
    added = []
    for tag in given:
        old = by_tag.get(tag["tag"])
        if old is None:
            added.append(tag)
        elif tag.get("level") is not None and tag["level"] != old["level"]:
            added.append({**tag, "note": old["note"]})
    return added
