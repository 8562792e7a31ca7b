"""Every enum value of the API has a Chinese label, served by `enumLabels` (issue 14,
point 9), so consoles show 已确认 rather than ACKNOWLEDGED without a table of their own."""

from __future__ import annotations

from graphql import GraphQLEnumType
from villagelink.graphql.core.labels import enum_labels
from villagelink.graphql.core.schema import executable_schema

LABELS = """query($enums: [String!]) { enumLabels(enums: $enums) { enum value label } }"""


def test_every_enum_value_has_a_chinese_label():
    schema = executable_schema()
    rows = enum_labels(schema)
    unlabelled = [f"{r['enum']}.{r['value']}" for r in rows if not r["label"]]
    assert unlabelled == [], 'add @label(zh: "...") to ' + ", ".join(unlabelled)
    values = sum(
        len(t.values)
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLEnumType) and not name.startswith("__")
    )
    assert len(rows) == values
    # Labels are Chinese (a console's zh-CN text), not the value spelled again.
    assert all(
        any("\u4e00" <= ch <= "\u9fff" for ch in r["label"]) for r in rows if r["value"] != "AED"
    )


def test_enum_labels_are_served_to_any_caller(gql, token):
    status, body = gql(LABELS, token("grid-worker", village="liulin"), {"enums": ["AlertState"]})
    assert status == 200 and "errors" not in body, body
    assert {r["value"]: r["label"] for r in body["data"]["enumLabels"]} == {
        "OPEN": "待处理",
        "ASSIGNED": "已派发",
        "ACKNOWLEDGED": "已确认",
        "RESOLVED": "已处置",
        "FALSE_ALARM": "误报",
    }
    _, body = gql(LABELS, token("integrator", client="any-client"), {"enums": None})
    assert len(body["data"]["enumLabels"]) == len(enum_labels(executable_schema()))
