"""The gateway's executor (graphql/core/executor.py): plain fields take a short path,
and whatever they answer, in whatever order, is what graphql-core's own executor answers."""

from __future__ import annotations

import pytest
from ariadne import ObjectType, make_executable_schema

from graphql import Undefined, execute, parse
from villagelink.graphql.core.executor import GatewayExecutor, carried, plain_fields
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.schema import executable_schema

SDL = """
enum Kind { FALL SMOKE }
type Item {
  name: String!
  nickName: String
  kind: Kind!
  count: Int!
  loud: String!
  withArgument(x: Int): String
  child: Item
  friend: Item
  children: [Item!]
  tags: [String]
}
type Query { items: [Item!]! }
"""


def _schema(items: list, friends: dict | None = None, asked: list | None = None):
    query, item = ObjectType("Query"), ObjectType("Item")
    query.set_field("items", lambda *_: items)
    item.set_field("loud", lambda row, _info: row["name"].upper())
    item.set_field("withArgument", lambda row, _info, x=0: f"{row['name']}{x}")

    @carried
    def resolve_friend(row, _info):
        (asked if asked is not None else []).append(row["name"])
        return (friends or {}).get(row["name"])

    item.set_field("friend", resolve_friend)
    return make_executable_schema(SDL, query, item, convert_names_case=True)


def _both(items: list, document: str, **schema_args):
    schema = _schema(items, **schema_args)
    standard = execute(schema, parse(document))
    gateway = execute(schema, parse(document), executor_class=GatewayExecutor)
    return standard, gateway


def test_plain_fields_are_those_read_straight_off_the_row():
    item = _schema([]).type_map["Item"]
    plain = plain_fields(item)
    # Not `loud` (a resolver of ours) nor `withArgument` (it takes one); `friend` is
    # read off a row that carries it.
    assert sorted(plain) == [
        "child", "children", "count", "friend", "kind", "name", "nickName", "tags",
    ]  # fmt: skip
    assert plain["children"].item_nullable is False and plain["tags"].item_nullable is True
    # Ariadne's camelCase alias reads the row's snake_case key.
    assert plain["nickName"].read({"nick_name": "小乙", "nickName": "x"}) == "小乙"
    assert plain["name"].nullable is False and plain["nickName"].nullable is True


def test_the_api_s_sensitive_and_resolved_fields_take_the_whole_way():
    resident = executable_schema().type_map["Resident"]
    plain = plain_fields(resident)
    assert {"name", "birthDate", "id"} <= set(plain)
    assert plain["birthDate"].read({"birth_date": "1950-01-01"}) == "1950-01-01"
    # The global ID is a function of the row alone (`row_field`).
    assert plain["id"].read({"village": "liulin", "id": 7}) == encode_id("Resident", "liulin", 7)
    # Masked and audited through their resolver.
    assert not {"idNumber", "phone"} & set(plain)
    # A page's rows carry the household they joined; any other row goes to the loader.
    household = {"id": 3, "village": "liulin", "address": "1号"}
    assert plain["household"].read({"id": 7, "household": household}) is household
    assert plain["household"].read({"id": 7, "household": None}) is None
    assert plain["household"].read({"id": 7, "household_id": 3}) is Undefined


def test_a_row_that_carries_a_value_spares_its_resolver():
    friends = {"甲": {"name": "丁", "kind": "FALL"}, "乙": {"name": "戊", "kind": "SMOKE"}}
    rows = [
        {"name": "甲", "kind": "FALL", "count": 1},
        {"name": "乙", "kind": "FALL", "count": 1, "friend": {"name": "戊", "kind": "SMOKE"}},
        {"name": "丙", "kind": "FALL", "count": 1, "friend": None},
    ]
    asked: list = []
    document = "{ items { name friend { name kind } } }"
    standard, gateway = _both(rows, document, friends=friends, asked=asked)
    assert gateway.errors is None and standard.errors is None
    # graphql-core's executor always resolves; the short path only for the row without.
    assert asked == ["甲", "乙", "丙", "甲"]
    assert (
        gateway.data
        == standard.data
        == {
            "items": [
                {"name": "甲", "friend": {"name": "丁", "kind": "FALL"}},
                {"name": "乙", "friend": {"name": "戊", "kind": "SMOKE"}},
                {"name": "丙", "friend": None},
            ]
        }
    )


def test_answers_match_graphql_core_field_for_field_in_the_document_order():
    items = [
        {"name": "甲", "nick_name": None, "kind": "FALL", "count": 3},
        {"name": "乙", "nick_name": "小乙", "kind": "SMOKE", "count": 0},
    ]
    document = """{ items { loud count name withArgument(x: 2) kind nickName
        again: name child { name } } }"""
    standard, gateway = _both(items, document)
    assert standard.errors is None and gateway.errors is None
    assert gateway.data == standard.data
    first = gateway.data["items"][0]  # type: ignore[index]
    assert list(first) == [
        "loud",
        "count",
        "name",
        "withArgument",
        "kind",
        "nickName",
        "again",
        "child",
    ]


@pytest.mark.parametrize(
    "row",
    [
        {"name": None, "kind": "FALL", "count": 1},  # null where the type allows none
        {"name": "甲", "kind": "FALL", "count": "many"},  # a value Int refuses
        {"name": "甲", "kind": "FLOOD", "count": 1},  # not a value of the enum
    ],
)
def test_a_value_the_type_refuses_is_graphql_core_s_error_with_its_path(row):
    standard, gateway = _both([row], "{ items { name kind count } }")
    assert gateway.data == standard.data
    assert [e.formatted for e in gateway.errors or []] == [
        e.formatted for e in standard.errors or []
    ]
    assert gateway.errors and gateway.errors[0].path[:2] == ["items", 0]


def test_an_object_read_off_the_row_fails_as_graphql_core_fails_it():
    rows = [
        {"name": "甲", "kind": "FALL", "count": 1, "child": {"name": None}},
        {"name": "乙", "kind": "FALL", "count": 1, "child": {"name": "丙", "kind": "SMOKE"}},
    ]
    standard, gateway = _both(rows, "{ items { name child { name kind } } }")
    assert gateway.data == standard.data
    assert gateway.data == {
        "items": [
            {"name": "甲", "child": None},
            {"name": "乙", "child": {"name": "丙", "kind": "SMOKE"}},
        ]
    }
    assert [e.formatted for e in gateway.errors or []] == [
        e.formatted for e in standard.errors or []
    ]
    assert gateway.errors and gateway.errors[0].path == ["items", 0, "child", "name"]


FAMILY = [
    {
        "name": "甲",
        "kind": "FALL",
        "count": 1,
        "tags": ["老人", None],
        "children": [
            {"name": "乙", "kind": "SMOKE", "count": 2, "children": []},
            {"name": "丙", "kind": "FALL", "count": 3, "children": None, "tags": []},
        ],
    },
    {"name": "丁", "kind": "SMOKE", "count": 0, "children": None},
]


def test_a_selection_plain_all_the_way_down_answers_as_graphql_core_does():
    document = """{ items { __typename name tags children { kind t: __typename name
        children { name } tags count } count } }"""
    standard, gateway = _both(FAMILY, document)
    assert standard.errors is None and gateway.errors is None
    assert gateway.data == standard.data
    first = gateway.data["items"][0]  # type: ignore[index]
    assert list(first) == ["__typename", "name", "tags", "children", "count"]
    assert first["children"][1] == {
        "kind": "FALL", "t": "Item", "name": "丙", "children": None, "tags": [], "count": 3,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("broken", "fails"),
    [
        ({"children": [None]}, True),  # a null item where the list allows none
        ({"children": [{"name": None, "kind": "FALL", "count": 1}]}, True),  # null deep inside
        ({"children": "乙"}, True),  # not a list
        ({"children": [{"name": "乙", "kind": "FLOOD", "count": 1}]}, True),  # not of the enum
        ({"tags": [1.5, "x"]}, False),  # String gives a number as its text
    ],
)
def test_a_list_the_short_path_cannot_complete_fails_as_graphql_core_fails_it(broken, fails):
    rows = [dict(FAMILY[0], **broken), FAMILY[1]]
    document = "{ items { name tags children { name kind count } } }"
    standard, gateway = _both(rows, document)
    assert gateway.data == standard.data
    assert [e.formatted for e in gateway.errors or []] == [
        e.formatted for e in standard.errors or []
    ]
    assert bool(gateway.errors) is fails


def test_a_document_sent_again_reuses_its_lists_completion_unless_a_directive_decides():
    from villagelink.graphql.core import executor

    items = [
        {
            "name": "甲",
            "kind": "fall",
            "count": 1,
            "children": [{"name": "乙", "kind": "smoke", "count": 2}],
        }
    ]
    schema = _schema(items)
    fixed = parse("fragment F on Item { count } { items { name children { name ...F } } }")
    decided = parse(
        "query($all: Boolean!) { items { name children { name count @include(if: $all) } } }"
    )
    built = []
    compile_ = GatewayExecutor._compile

    def counted(self, field, details):
        built.append(field)
        return compile_(self, field, details)

    GatewayExecutor._compile = counted
    try:
        executor._SHARED_COMPLETIONS.clear()
        first = execute(schema, fixed, executor_class=GatewayExecutor)
        compiled_once = len(built)
        again = execute(schema, fixed, executor_class=GatewayExecutor)
        assert first == again == execute(schema, fixed)
        assert compiled_once and len(built) == compiled_once  # the second built nothing
        # An @include reads the request's variables: built for each request, and right.
        for all_ in (True, False, True):
            built.clear()
            variables = {"all": all_}
            answer = execute(
                schema, decided, variable_values=variables, executor_class=GatewayExecutor
            )
            assert answer == execute(schema, decided, variable_values=variables)
            assert ("count" in answer.data["items"][0]["children"][0]) is all_
            assert built
    finally:
        GatewayExecutor._compile = compile_
