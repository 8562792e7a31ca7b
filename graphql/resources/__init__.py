"""GraphQL of shared resources (micro fire stations, venues, AEDs, vehicles) and
their bookings, by the village or by its neighbours."""

from villagelink.graphql.resources import mutations, types

bindables = [*types.bindables, *mutations.bindables]
