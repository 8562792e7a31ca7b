"""Points on the ground near a village: distances and offsets in metres.

The safe-zone rule (sensing ingest) measures how far a wearer is from home; the demo
and the device simulator place things and walk people around in metres. A sphere is
plenty at the scale of a village.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_000


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def moved(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point `north_m` north and `east_m` east of (lat, lon), rounded to 6 places
    (about 10 cm): what a device reports."""
    lat2 = lat + math.degrees(north_m / EARTH_RADIUS_M)
    lon2 = lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return round(lat2, 6), round(lon2, 6)
