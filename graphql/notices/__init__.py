"""Public notices (村务公开) in the API: the village's list, node, mutations."""

from villagelink.graphql.notices import mutations, types

bindables = [*types.bindables, *mutations.bindables]
