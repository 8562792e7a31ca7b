"""The demo village's people: grids and grid staff, buildings, households, residents
and their key-population tags, at the sizes of docs/domain.md.

`build_village` is the pure part: from a plan and a seed it makes every row of one
village without touching a database, so the same seed always gives the same village;
`write_village` bulk-inserts them and returns their database ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from faker import Faker
from sqlalchemy import Connection
from tqdm import tqdm

from villagelink.tenants import models as m
from villagelink.tenants.demo.bulk import insert_returning_ids
from villagelink.tenants.demo.plans import VillagePlan, demo_grid_worker_subject
from villagelink.tenants.id_numbers import compose

# Residents aged 60+ count as elderly (docs/domain.md: about a third).
ELDERLY_AGE = 60
# Ages are reckoned at a fixed date, not today, so that a seed gives the same
# birth dates whenever it runs.
AGES_AS_OF = date(2026, 1, 1)


RESIDENT_BATCH = 1000


# --- rows of one village -------------------------------------------------------
# References between rows are positions in the lists of VillageRows; the writer
# turns them into database ids.


@dataclass(frozen=True)
class GridRow:
    code: str
    name: str
    level: str
    parent: int | None


@dataclass(frozen=True)
class StaffRow:
    name: str
    phone: str
    tier: str
    account_sub: str | None
    grids: tuple[int, ...]


@dataclass(frozen=True)
class BuildingRow:
    name: str
    grid: int
    units: int
    floors: int


@dataclass(frozen=True)
class HouseholdRow:
    building: int
    unit_no: int
    room_no: str
    address: str
    grid: int


@dataclass(frozen=True)
class ResidentRow:
    household: int
    relation: str
    name: str
    gender: str
    birth_date: date
    id_number: str
    phone: str | None


@dataclass(frozen=True)
class TagRow:
    resident: int
    tag: str
    level: int | None = None
    note: str | None = None


@dataclass
class VillageRows:
    grids: list[GridRow] = field(default_factory=list)
    staff: list[StaffRow] = field(default_factory=list)
    buildings: list[BuildingRow] = field(default_factory=list)
    households: list[HouseholdRow] = field(default_factory=list)
    residents: list[ResidentRow] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)


# --- people --------------------------------------------------------------------

# Other Tianjin districts: spouses and villagers born elsewhere in the city.
TIANJIN_DISTRICTS = ("120101", "120104", "120110", "120112", "120113", "120114", "120118")
# Districts of provincial capitals in the north: where renters come from.
ELSEWHERE = ("130102", "140105", "230102", "340102", "370102", "410102")

# (lowest age, highest age, weight): a population aged 60+ thinning out with age.
ELDERLY_AGES = (
    (60, 64, 30),
    (65, 69, 27),
    (70, 74, 20),
    (75, 79, 12),
    (80, 84, 7),
    (85, 89, 3),
    (90, 98, 1),
)


@dataclass
class _Member:
    relation: str
    age: int
    gender: str
    surname: str
    name: str
    birth_date: date
    id_number: str
    phone: str | None


class _People:
    """Makes residents of one village: names and phones from Faker, ID numbers
    unique within the village and consistent with birth date and gender."""

    def __init__(self, plan: VillagePlan, rng: random.Random, fake: Faker):
        self.plan = plan
        self.rng = rng
        self.fake = fake
        self._issued: set[str] = set()

    def make(self, relation: str, age: int, gender: str, surname: str, area_code: str) -> _Member:
        given = self.fake.first_name_male() if gender == "male" else self.fake.first_name_female()
        born = self._birth_date(age)
        return _Member(
            relation,
            age,
            gender,
            surname,
            surname + given,
            born,
            self._id_number(area_code, born, gender),
            self._phone(age),
        )

    def surname(self) -> str:
        return self.fake.last_name()

    def local_area_code(self) -> str:
        return (
            self.plan.area_code if self.rng.random() < 0.88 else self.rng.choice(TIANJIN_DISTRICTS)
        )

    def elsewhere_area_code(self) -> str:
        return self.rng.choice(ELSEWHERE)

    def elderly_age(self) -> int:
        low, high, _ = self.rng.choices(ELDERLY_AGES, [w for *_, w in ELDERLY_AGES])[0]
        return self.rng.randint(low, high)

    def _birth_date(self, age: int) -> date:
        latest = AGES_AS_OF.replace(year=AGES_AS_OF.year - age)
        earliest = AGES_AS_OF.replace(year=AGES_AS_OF.year - age - 1) + timedelta(days=1)
        return earliest + timedelta(days=self.rng.randrange((latest - earliest).days + 1))

    def _id_number(self, area_code: str, born: date, gender: str) -> str:
        while True:
            sequence = (
                self.plan.id_sequence_start
                + 2 * self.rng.randrange(100)
                + (1 if gender == "male" else 0)
            )
            number = compose(area_code, born, sequence)
            if number not in self._issued:
                self._issued.add(number)
                return number

    def _phone(self, age: int) -> str | None:
        # Young children have none; the oldest often rely on their children's.
        chance = 0.0 if age < 14 else 0.5 if age < 18 else 0.95 if age < 75 else 0.6
        return self.fake.phone_number() if self.rng.random() < chance else None


# --- households ----------------------------------------------------------------
# Each kind builds its members from the oldest generation down, so that children
# are always at least twenty years younger than their parents.


def _head_and_spouse(p: _People, head_age: int, area_code: str | None = None) -> list[_Member]:
    """A married couple; households are mostly registered under the husband,
    and wives are a little younger."""
    if p.rng.random() < 0.8:
        genders, spouse_age = ("male", "female"), head_age + p.rng.randint(-5, 2)
    else:
        genders, spouse_age = ("female", "male"), head_age + p.rng.randint(-2, 5)
    return [
        p.make("head", head_age, genders[0], p.surname(), area_code or p.local_area_code()),
        p.make(
            "spouse", max(20, spouse_age), genders[1], p.surname(), area_code or p.local_area_code()
        ),
    ]


def _children(
    p: _People, parents: Sequence[_Member], count: int, relation: str = "child"
) -> list[_Member]:
    """Children of `parents`: their father's surname, their birthplace."""
    youngest_parent = min(parent.age for parent in parents)
    if youngest_parent < 20:
        return []
    surname = _paternal_surname(p, parents)
    return [
        p.make(
            relation,
            p.rng.randint(max(0, youngest_parent - 38), youngest_parent - 20),
            p.rng.choice(("male", "female")),
            surname,
            parents[0].id_number[:6],
        )
        for _ in range(count)
    ]


def _paternal_surname(p: _People, members: Sequence[_Member]) -> str:
    father = next((member for member in members if member.gender == "male"), None)
    return father.surname if father else p.surname()


def _widowed(p: _People, couple: list[_Member], chance: float) -> list[_Member]:
    return couple[:1] if p.rng.random() < chance else couple


def _elderly_alone(p: _People) -> list[_Member]:
    # Women live longer: most old people living alone are widows.
    gender = "female" if p.rng.random() < 0.62 else "male"
    return [p.make("head", p.elderly_age(), gender, p.surname(), p.local_area_code())]


def _elderly_couple(p: _People) -> list[_Member]:
    return _head_and_spouse(p, p.elderly_age())


def _with_parents(p: _People) -> list[_Member]:
    """Three generations: a couple, their children and the head's parents (三代同堂)."""
    parent_age = p.elderly_age()
    couple = _head_and_spouse(p, max(25, parent_age - p.rng.randint(22, 34)))
    head = couple[0]
    parents = [p.make("parent", parent_age, "female", p.surname(), head.id_number[:6])]
    if p.rng.random() < 0.45:
        parents.append(
            p.make(
                "parent", parent_age + p.rng.randint(0, 4), "male", head.surname, head.id_number[:6]
            )
        )
    return [*couple, *_children(p, couple, p.rng.choice((1, 1, 2))), *parents]


def _grandparents_family(p: _People) -> list[_Member]:
    """An old head with a grown child, the child's spouse and grandchildren."""
    couple = _widowed(p, _head_and_spouse(p, p.elderly_age()), 0.3)
    child = _children(p, couple, 1)
    if not child:
        return couple
    family = child
    if p.rng.random() < 0.5:
        gender = "female" if child[0].gender == "male" else "male"
        family = [
            *child,
            p.make(
                "other",
                max(20, child[0].age + p.rng.randint(-3, 3)),
                gender,
                p.surname(),
                p.local_area_code(),
            ),
        ]
    return [*couple, *family, *_children(p, family, p.rng.choice((1, 1, 2)), "grandchild")]


def _left_behind(p: _People) -> list[_Member]:
    """Grandparents raising grandchildren while the parents work in the city (留守)."""
    couple = _widowed(p, _head_and_spouse(p, p.elderly_age()), 0.4)
    surname = _paternal_surname(p, couple)
    grandchildren = [
        p.make(
            "grandchild",
            p.rng.randint(1, 15),
            p.rng.choice(("male", "female")),
            surname,
            couple[0].id_number[:6],
        )
        for _ in range(p.rng.choice((1, 1, 2)))
    ]
    return [*couple, *grandchildren]


def _single_adult(p: _People) -> list[_Member]:
    gender = "male" if p.rng.random() < 0.6 else "female"
    return [p.make("head", p.rng.randint(20, 59), gender, p.surname(), p.local_area_code())]


def _couple(p: _People) -> list[_Member]:
    # Most couples without children at home are middle-aged, their children gone to the city.
    age = p.rng.randint(45, 59) if p.rng.random() < 0.7 else p.rng.randint(23, 44)
    return _head_and_spouse(p, age)


def _nuclear(p: _People) -> list[_Member]:
    couple = _head_and_spouse(p, p.rng.randint(25, 58))
    return [*couple, *_children(p, couple, p.rng.choices((1, 2, 3), (50, 42, 8))[0])]


def _single_parent(p: _People) -> list[_Member]:
    gender = "female" if p.rng.random() < 0.65 else "male"
    head = p.make("head", p.rng.randint(28, 55), gender, p.surname(), p.local_area_code())
    return [head, *_children(p, [head], p.rng.choice((1, 1, 2)))]


def _renter_single(p: _People) -> list[_Member]:
    gender = "male" if p.rng.random() < 0.6 else "female"
    return [p.make("head", p.rng.randint(18, 50), gender, p.surname(), p.elsewhere_area_code())]


def _renter_couple(p: _People) -> list[_Member]:
    return _head_and_spouse(p, p.rng.randint(20, 50), p.elsewhere_area_code())


def _renter_family(p: _People) -> list[_Member]:
    couple = _head_and_spouse(p, p.rng.randint(25, 45), p.elsewhere_area_code())
    return [*couple, *_children(p, couple, p.rng.choice((1, 1, 2)))]


Kind = Callable[[_People], list[_Member]]
# Households with someone aged 60+, and households without: the village is
# filled from whichever pool moves its share of elderly toward the plan.
WITH_ELDERLY: tuple[tuple[Kind, int], ...] = (
    (_elderly_alone, 24),
    (_elderly_couple, 38),
    (_with_parents, 16),
    (_grandparents_family, 12),
    (_left_behind, 10),
)
WITHOUT_ELDERLY: tuple[tuple[Kind, int], ...] = (
    (_single_adult, 12),
    (_couple, 16),
    (_nuclear, 64),
    (_single_parent, 8),
)
RENTERS: tuple[tuple[Kind, int], ...] = (
    (_renter_single, 40),
    (_renter_couple, 25),
    (_renter_family, 35),
)


@dataclass
class _Household:
    members: list[_Member]
    floating: bool


def _pick_kind(rng: random.Random, pool: tuple[tuple[Kind, int], ...]) -> Kind:
    return rng.choices([kind for kind, _ in pool], [weight for _, weight in pool])[0]


def _compose_households(plan: VillagePlan, p: _People) -> list[_Household]:
    households: list[_Household] = []
    total = elderly = 0

    def add(members: list[_Member], floating: bool) -> None:
        nonlocal total, elderly
        # The last household is cut short so that the village has exactly the
        # planned number of residents; the head always comes first.
        members = members[: plan.residents - total]
        households.append(_Household(members, floating))
        total += len(members)
        elderly += sum(member.age >= ELDERLY_AGE for member in members)

    floating_target = round(plan.floating_share * plan.residents)
    while total < floating_target:
        add(_pick_kind(p.rng, RENTERS)(p), floating=True)
    while total < plan.residents:
        pool = WITH_ELDERLY if elderly < plan.elderly_share * total else WITHOUT_ELDERLY
        add(_pick_kind(p.rng, pool)(p), floating=False)
    # Renters live among the villagers, not in buildings of their own.
    p.rng.shuffle(households)
    return households


# --- buildings and grids -------------------------------------------------------


@dataclass
class _Building:
    units: int
    floors: int
    # (unit, room) of each household living here, in order.
    rooms: list[tuple[int, str]]


def _house(rng: random.Random, count: int) -> list[_Building]:
    """Residential buildings (2-4 units, 5-6 floors, two flats a landing) for
    `count` households, in order, with some flats standing empty."""
    buildings: list[_Building] = []
    housed = 0
    while housed < count:
        units, floors = rng.randint(2, 4), rng.randint(5, 6)
        flats = [
            (unit, f"{floor}{door:02d}")
            for unit in range(1, units + 1)
            for floor in range(1, floors + 1)
            for door in (1, 2)
        ]
        occupied = round(len(flats) * rng.uniform(0.82, 0.96))
        rooms = sorted(
            rng.sample(flats, min(occupied, count - housed)),
            key=lambda flat: (flat[0], int(flat[1])),
        )
        buildings.append(_Building(units, floors, rooms))
        housed += len(rooms)
    return buildings


def _group(rng: random.Random, sizes: Sequence[int], low: int, high: int) -> list[list[int]]:
    """Consecutive positions grouped until each group's size reaches a target
    drawn from [low, high]; a small remainder joins the group before it."""
    groups: list[list[int]] = []
    current: list[int] = []
    filled, target = 0, rng.randint(low, high)
    for position, size in enumerate(sizes):
        current.append(position)
        filled += size
        if filled >= target:
            groups.append(current)
            current, filled, target = [], 0, rng.randint(low, high)
    if current:
        if groups and filled < low // 2:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def _chunks(items: Sequence[int], size: int) -> list[tuple[int, ...]]:
    return [tuple(items[start : start + size]) for start in range(0, len(items), size)]


def _grids_and_staff(
    plan: VillagePlan,
    rng: random.Random,
    fake: Faker,
    buildings: list[_Building],
    building_residents: list[int],
    rows: VillageRows,
) -> list[int]:
    """Community, large and micro grids over the buildings, and the three tiers
    of grid staff (docs/domain.md: one chief, a few grid workers, a few dozen micro-grid workers).
    Returns the micro-grid (position in rows.grids) of each building."""
    # A micro-grid is 30-50 households; a large grid 400-700 residents.
    micro_buildings = _group(rng, [len(b.rooms) for b in buildings], 30, 50)
    large_micros = _group(
        rng, [sum(building_residents[b] for b in group) for group in micro_buildings], 400, 700
    )

    rows.grids.append(GridRow(plan.slug, plan.name, "community", None))
    building_grid = [0] * len(buildings)
    large_grids: list[int] = []
    micro_grids_by_large: list[list[int]] = []
    for large_no, micro_positions in enumerate(large_micros, start=1):
        large = len(rows.grids)
        rows.grids.append(GridRow(f"{plan.slug}-{large_no:02d}", f"第{large_no}网格", "large", 0))
        large_grids.append(large)
        micros: list[int] = []
        for micro_no, position in enumerate(micro_positions, start=1):
            micro = len(rows.grids)
            rows.grids.append(
                GridRow(
                    f"{plan.slug}-{large_no:02d}-{micro_no:02d}",
                    f"第{large_no}网格第{micro_no}微网格",
                    "micro",
                    large,
                )
            )
            micros.append(micro)
            for building in micro_buildings[position]:
                building_grid[building] = micro
        micro_grids_by_large.append(micros)

    def staff(tier: str, grids: tuple[int, ...], account_sub: str | None = None) -> None:
        rows.staff.append(StaffRow(fake.name(), fake.phone_number(), tier, account_sub, grids))

    staff("grid_chief", (0,))
    # A grid worker looks after two neighbouring large grids, a micro-grid
    # worker after three micro-grids of the same large grid.
    for grids in _chunks(large_grids, 2):
        staff("grid_worker", grids)
    micro_chunks = [grids for micros in micro_grids_by_large for grids in _chunks(micros, 3)]
    # The first micro-grid worker is the one `villagelink token --role grid-worker` signs in as.
    staff("micro_grid_worker", micro_chunks[0], demo_grid_worker_subject(plan.slug))
    for grids in micro_chunks[1:]:
        staff("micro_grid_worker", grids)
    return building_grid


# --- key-population tags -------------------------------------------------------

DISABILITY_KINDS = (
    "肢体残疾",
    "视力残疾",
    "听力残疾",
    "言语残疾",
    "智力残疾",
    "精神残疾",
    "多重残疾",
)
# Level 1 is the most severe and the rarest.
DISABILITY_LEVELS = ((1, 10), (2, 20), (3, 30), (4, 40))
KEY_FOCUS_NOTES = {
    "child": ("困境儿童", "留守儿童"),
    "adult": ("社区矫正对象", "刑满释放人员", "严重精神障碍患者", "重点信访人员"),
    "elderly": ("高龄空巢老人", "失能半失能老人"),
}


def _weighted_sample(
    rng: random.Random, items: Sequence[int], weights: Sequence[float], count: int
) -> list[int]:
    """`count` items without replacement, each as likely as its weight
    (Efraimidis-Spirakis keys), in their original order."""
    keys = sorted(
        ((rng.random() ** (1 / weight), item) for item, weight in zip(items, weights, strict=True)),
        reverse=True,
    )
    return sorted(item for _, item in keys[:count])


def _tags(plan: VillagePlan, rng: random.Random, households: list[_Household]) -> list[TagRow]:
    """Tags in the shares of docs/domain.md. Counts are fixed fractions rather than coin
    flips, so that even a small test village carries every group."""
    members = [member for household in households for member in household.members]
    household_of = [h for h, household in enumerate(households) for _ in household.members]
    residents = range(len(members))
    ages = [member.age for member in members]
    local = [h for h, household in enumerate(households) if not household.floating]
    tags: list[TagRow] = []

    def tag_households(chosen: Sequence[int], tag: str) -> None:
        chosen_set = set(chosen)
        tags.extend(TagRow(r, tag) for r in residents if household_of[r] in chosen_set)

    tags.extend(
        TagRow(r, "elderly_living_alone")
        for r in residents
        if ages[r] >= ELDERLY_AGE and len(households[household_of[r]].members) == 1
    )
    tag_households(
        [h for h, household in enumerate(households) if household.floating], "floating_population"
    )

    # Relocation moved whole households (还迁): tag households until the share is reached.
    relocated: list[int] = []
    target = round(plan.relocated_share * len(members))
    tagged = 0
    for h in rng.sample(local, len(local)):
        if tagged >= target:
            break
        relocated.append(h)
        tagged += len(households[h].members)
    tag_households(relocated, "relocated_villager")

    # 低保 is granted to a local household, more often to old people living alone.
    low_income_weights = [2.0 if len(households[h].members) == 1 else 1.0 for h in local]
    tag_households(
        _weighted_sample(rng, local, low_income_weights, round(0.03 * len(households))),
        "low_income",
    )

    # Disability grows with age.
    disability_weights = [
        1.0 if age < 18 else 2.0 if age < 60 else 5.0 if age < 80 else 9.0 for age in ages
    ]
    for r in _weighted_sample(rng, residents, disability_weights, round(0.045 * len(members))):
        level = rng.choices([lv for lv, _ in DISABILITY_LEVELS], [w for _, w in DISABILITY_LEVELS])[
            0
        ]
        tags.append(TagRow(r, "disabled", level, rng.choice(DISABILITY_KINDS)))

    for r in sorted(rng.sample(residents, round(0.06 * len(members)))):
        group = "child" if ages[r] < 16 else "adult" if ages[r] < ELDERLY_AGE else "elderly"
        tags.append(TagRow(r, "key_focus", note=rng.choice(KEY_FOCUS_NOTES[group])))

    # Rural party members are older on average; volunteers are students and the newly retired.
    adults = [r for r in residents if ages[r] >= 18]
    party_weights = [1.0 if ages[r] < 35 else 1.3 if ages[r] < 60 else 2.0 for r in adults]
    tags.extend(
        TagRow(r, "party_member")
        for r in _weighted_sample(rng, adults, party_weights, round(0.07 * len(adults)))
    )
    volunteer_ages = [r for r in residents if 16 <= ages[r] <= 75]
    volunteer_weights = [1.5 if ages[r] < 23 or ages[r] >= 55 else 1.0 for r in volunteer_ages]
    tags.extend(
        TagRow(r, "volunteer")
        for r in _weighted_sample(
            rng, volunteer_ages, volunteer_weights, round(0.09 * len(volunteer_ages))
        )
    )
    return tags


# --- one village ---------------------------------------------------------------


def build_village(plan: VillagePlan, seed: int) -> VillageRows:
    """Every row of one demo village, made from `seed` alone (no database)."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    households = _compose_households(plan, _People(plan, rng, fake))
    buildings = _house(rng, len(households))

    # Households move into the buildings' flats in order.
    building_residents: list[int] = []
    position = 0
    for building in buildings:
        living_here = households[position : position + len(building.rooms)]
        building_residents.append(sum(len(household.members) for household in living_here))
        position += len(building.rooms)
    rows = VillageRows()
    building_grid = _grids_and_staff(plan, rng, fake, buildings, building_residents, rows)

    for b, building in enumerate(buildings):
        rows.buildings.append(
            BuildingRow(f"{b + 1}号楼", building_grid[b], building.units, building.floors)
        )
        for unit, room in building.rooms:
            rows.households.append(
                HouseholdRow(
                    b, unit, room, f"{plan.name}{b + 1}号楼{unit}单元{room}室", building_grid[b]
                )
            )
    for h, household in enumerate(households):
        rows.residents.extend(
            ResidentRow(
                h,
                member.relation,
                member.name,
                member.gender,
                member.birth_date,
                member.id_number,
                member.phone,
            )
            for member in household.members
        )
    rows.tags = _tags(plan, rng, households)
    return rows


# --- writing -------------------------------------------------------------------


@dataclass(frozen=True)
class VillageIds:
    """The database ids of a village's rows, by their positions in VillageRows."""

    grids: list[int]
    staff: list[int]
    buildings: list[int]
    households: list[int]
    residents: list[int]


def write_village(conn: Connection, rows: VillageRows, bar: tqdm | None = None) -> VillageIds:
    """Insert a village's rows into the village schema of `conn`, turning list
    positions into database ids (returned); `bar` counts residents as they go in."""
    grid_ids: dict[int, int] = {}
    # Parents before children: the community grid, then large, then micro grids.
    for level in m.GRID_LEVELS:
        positions = [g for g, grid in enumerate(rows.grids) if grid.level == level]
        ids = insert_returning_ids(
            conn,
            m.grids,
            [
                {
                    "code": rows.grids[g].code,
                    "name": rows.grids[g].name,
                    "level": level,
                    "parent_id": grid_ids.get(rows.grids[g].parent),
                }
                for g in positions
            ],
        )
        grid_ids.update(zip(positions, ids, strict=True))

    staff_ids = insert_returning_ids(
        conn,
        m.grid_staff,
        [
            {"name": s.name, "phone": s.phone, "tier": s.tier, "account_sub": s.account_sub}
            for s in rows.staff
        ],
    )
    conn.execute(
        m.grid_assignments.insert(),
        [
            {"staff_id": staff_id, "grid_id": grid_ids[g]}
            for staff_id, s in zip(staff_ids, rows.staff, strict=True)
            for g in s.grids
        ],
    )

    building_ids = insert_returning_ids(
        conn,
        m.buildings,
        [
            {"name": b.name, "grid_id": grid_ids[b.grid], "units": b.units, "floors": b.floors}
            for b in rows.buildings
        ],
    )
    household_ids = insert_returning_ids(
        conn,
        m.households,
        [
            {
                "building_id": building_ids[h.building],
                "unit_no": h.unit_no,
                "room_no": h.room_no,
                "address": h.address,
                "grid_id": grid_ids[h.grid],
            }
            for h in rows.households
        ],
    )

    resident_ids: list[int] = []
    for start in range(0, len(rows.residents), RESIDENT_BATCH):
        batch = rows.residents[start : start + RESIDENT_BATCH]
        resident_ids += insert_returning_ids(
            conn,
            m.residents,
            [
                {
                    "name": r.name,
                    "gender": r.gender,
                    "birth_date": r.birth_date,
                    "id_number": r.id_number,
                    "phone": r.phone,
                    "household_id": household_ids[r.household],
                    "relation_to_head": r.relation,
                    "grid_id": grid_ids[rows.households[r.household].grid],
                }
                for r in batch
            ],
        )
        if bar is not None:
            bar.update(len(batch))

    if rows.tags:
        conn.execute(
            m.resident_tags.insert(),
            [
                {
                    "resident_id": resident_ids[t.resident],
                    "tag": t.tag,
                    "level": t.level,
                    "note": t.note,
                }
                for t in rows.tags
            ],
        )
    conn.execute(
        m.households.update()
        .where(
            m.households.c.id == m.residents.c.household_id,
            m.residents.c.relation_to_head == "head",
            m.households.c.head_resident_id.is_(None),
        )
        .values(head_resident_id=m.residents.c.id)
    )
    return VillageIds(
        [grid_ids[g] for g in range(len(rows.grids))],
        staff_ids,
        building_ids,
        household_ids,
        resident_ids,
    )
