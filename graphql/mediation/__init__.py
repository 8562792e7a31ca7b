"""Mediation cases (调解) in the API: types and mutations, bound as one."""

from villagelink.graphql.mediation import mutations, types

bindables = [*types.bindables, *mutations.bindables]
