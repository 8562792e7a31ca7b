"""The village's structure in the API: buildings, and the mutations that keep grids,
buildings and households (create, update, archive)."""

from villagelink.graphql.structure import mutations, types

bindables = [*types.bindables, *mutations.bindables]
