"""Activities, volunteer teams and points in the API: everything to bind to the schema."""

from villagelink.graphql.activities import mutations, types, volunteers

bindables = [*types.bindables, *volunteers.bindables, *mutations.bindables]
