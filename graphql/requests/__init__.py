"""Requests (诉求/工单) and action lists (行动清单) in the API, bound as one."""

from villagelink.graphql.requests import mutations, types

bindables = [*types.bindables, *mutations.bindables]
