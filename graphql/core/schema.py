"""The executable schema: the SDL files of every domain bound to their resolvers."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ariadne import SchemaBindable, load_schema_from_path, make_executable_schema

from graphql import GraphQLEnumType, GraphQLSchema
from villagelink.graphql.core.coercion import install as install_coercion
from villagelink.graphql.core.nesting import install as install_nesting_check

SDL_DIR = Path(__file__).resolve().parent.parent / "schema"


class LowerCaseEnumValues(SchemaBindable):
    """Every enum value of the API is SCREAMING_SNAKE_CASE (GraphQL's convention), while
    Python, the database, the outbox and webhook payloads keep the lower-case string
    (`FALSE_ALARM` is "false_alarm"). This maps one to the other at the schema boundary,
    for every enum at once: arguments and variables reach resolvers lower-case, and the
    lower-case strings resolvers return serialize as the upper-case names. Bound first, so
    that an enum needing another mapping can still get its own EnumType after it."""

    def bind_to_schema(self, schema: GraphQLSchema) -> None:
        for graphql_type in schema.type_map.values():
            if isinstance(graphql_type, GraphQLEnumType) and not graphql_type.name.startswith("__"):
                for name, value in graphql_type.values.items():
                    value.value = name.lower()


@cache
def executable_schema() -> GraphQLSchema:
    from villagelink.graphql import activities, service_orders
    from villagelink.graphql.api_clients import bindables as api_client_bindables
    from villagelink.graphql.core.labels import bindables as label_bindables
    from villagelink.graphql.core.nodes import node_interface
    from villagelink.graphql.core.payloads import bindables as payload_bindables
    from villagelink.graphql.core.scalars import date_scalar, datetime_scalar, json_scalar
    from villagelink.graphql.core.sensitive import guard_sensitive_fields
    from villagelink.graphql.health import bindables as health_bindables
    from villagelink.graphql.linkage import bindables as linkage_bindables
    from villagelink.graphql.live import bindables as live_bindables
    from villagelink.graphql.mediation import bindables as mediation_bindables
    from villagelink.graphql.notices import bindables as notice_bindables
    from villagelink.graphql.onetable import bindables as onetable_bindables
    from villagelink.graphql.requests import bindables as request_bindables
    from villagelink.graphql.residents import accounts as resident_accounts
    from villagelink.graphql.residents import mutations as resident_mutations
    from villagelink.graphql.residents import types as resident_types
    from villagelink.graphql.resources import bindables as resource_bindables
    from villagelink.graphql.sensing import alerts as alert_api
    from villagelink.graphql.sensing import devices as device_api
    from villagelink.graphql.sensing import ingest as ingest_api
    from villagelink.graphql.staff import bindables as staff_bindables
    from villagelink.graphql.storage import mutations as storage_mutations
    from villagelink.graphql.storage import types as storage_types
    from villagelink.graphql.structure import bindables as structure_bindables
    from villagelink.graphql.villages import mutations as village_mutations
    from villagelink.graphql.villages import regions as region_mutations
    from villagelink.graphql.villages import tasks as village_tasks
    from villagelink.graphql.villages import types as village_types
    from villagelink.graphql.webhooks import bindables as webhook_bindables

    schema = make_executable_schema(
        load_schema_from_path(str(SDL_DIR)),
        LowerCaseEnumValues(),
        node_interface,
        date_scalar,
        datetime_scalar,
        json_scalar,
        *village_types.bindables,
        *region_mutations.bindables,
        *village_mutations.bindables,
        *village_tasks.bindables,
        *label_bindables,
        *payload_bindables,
        *resident_types.bindables,
        *resident_mutations.bindables,
        *resident_accounts.bindables,
        *structure_bindables,
        *mediation_bindables,
        *request_bindables,
        *service_orders.bindables,
        *activities.bindables,
        *notice_bindables,
        *onetable_bindables,
        *storage_types.bindables,
        *storage_mutations.bindables,
        *device_api.bindables,
        *alert_api.bindables,
        *ingest_api.bindables,
        *health_bindables,
        *webhook_bindables,
        *linkage_bindables,
        *resource_bindables,
        *staff_bindables,
        *api_client_bindables,
        *live_bindables,
        # Python's snake_case rows and inputs meet the API's camelCase here, once.
        convert_names_case=True,
    )
    # After the bindings: the guard wraps whatever resolver each marked field ended up with.
    schema = guard_sensitive_fields(schema)
    install_coercion(schema)
    install_nesting_check()
    return schema
