"""GraphQL of shared resources (micro fire stations, venues, AEDs, vehicles) and
their bookings, by the village or by its neighbours."""

bindables: list = []
