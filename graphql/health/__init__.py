"""Health records and readings in the API: types and mutations, bound as one."""

from villagelink.graphql.health import mutations, types

bindables = [*types.bindables, *mutations.bindables]
