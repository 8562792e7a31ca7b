"""Grid staff in the API: the village's staff list, their grids and logins, the mutations."""

from villagelink.graphql.staff import mutations, types

bindables = [*types.bindables, *mutations.bindables]
