"""One rule for time (issue 14, point 9): every DateTime of the API is RFC 3339 on the
village's clock (+08:00). The schema's DateTime fields all go through the one scalar
(graphql/core/scalars.py); the walk below fails on a moment typed otherwise."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from graphql import GraphQLObjectType, GraphQLScalarType, get_named_type
from villagelink.graphql.core.schema import executable_schema

from .test_tasks import new_alert, tasks_of

RFC3339_VILLAGE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+08:00$")
# Names that say "a moment"; a field so named must be a DateTime.
MOMENT_NAME = re.compile(r"(At|Since|Until)$")
# Wall-clock times of day, not moments: "09:00" every Saturday, wherever the server is.
WALL_CLOCK = {("ActivitySchedule", "startTime")}


def datetime_fields(schema) -> list[tuple[str, str]]:
    return [
        (type_name, field_name)
        for type_name, graphql_type in sorted(schema.type_map.items())
        if isinstance(graphql_type, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in graphql_type.fields.items()
        if get_named_type(field.type).name == "DateTime"
    ]


def test_every_moment_of_the_schema_is_a_datetime_of_the_one_scalar():
    schema = executable_schema()
    found = datetime_fields(schema)
    assert len(found) > 50  # the walk sees the schema, not an empty list
    misnamed = [
        (type_name, field_name)
        for type_name, graphql_type in schema.type_map.items()
        if isinstance(graphql_type, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in graphql_type.fields.items()
        if MOMENT_NAME.search(field_name)
        and get_named_type(field.type).name != "DateTime"
        and (type_name, field_name) not in WALL_CLOCK
    ]
    assert misnamed == []
    scalar = schema.type_map["DateTime"]
    assert isinstance(scalar, GraphQLScalarType)
    for moment in (
        datetime(2026, 12, 20, 1, 0, tzinfo=UTC),
        datetime(2026, 12, 20, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 12, 19, 20, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
    ):
        shown = scalar.serialize(moment)
        assert RFC3339_VILLAGE.match(shown), shown
        assert datetime.fromisoformat(shown) == moment  # the same instant
    with pytest.raises(TypeError):
        scalar.serialize(datetime(2026, 12, 20, 9, 0))


def test_moments_read_through_the_api_carry_the_village_offset(db, gql, token, village):
    slug = village.slug
    new_alert(db, slug, level="village")
    admin = token("village-admin", village=slug)
    [item] = tasks_of(gql, admin)["items"]
    assert RFC3339_VILLAGE.match(item["since"]) and RFC3339_VILLAGE.match(item["dueAt"])
    status, body = gql(
        """query($slug: String!) { village(slug: $slug) { alerts(first: 5) { edges { node {
          raisedAt lastTriggeredAt ackDueAt createdAt timeline { at } } } } } }""",
        admin,
        {"slug": slug},
    )
    assert status == 200 and "errors" not in body, body
    [edge] = body["data"]["village"]["alerts"]["edges"]
    node = edge["node"]
    moments = [node["raisedAt"], node["lastTriggeredAt"], node["ackDueAt"]]
    moments += [event["at"] for event in node["timeline"]]
    assert all(RFC3339_VILLAGE.match(m) for m in moments), moments
