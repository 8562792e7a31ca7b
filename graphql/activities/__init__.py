"""Activities, volunteer teams and points in the API: everything to bind to the schema."""

from villagelink.graphql.activities import check_in_codes, mutations, rewards, types, volunteers

bindables = [
    *types.bindables,
    *volunteers.bindables,
    *mutations.bindables,
    *check_in_codes.bindables,
    *rewards.bindables,
]
