"""Shared resources a village owns (micro fire station, venue, AED, vehicle) and
their bookings, made by the village or by a neighbour under an agreement."""
