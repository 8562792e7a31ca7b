"""The demo region: five fictional neighbouring villages at the sizes of
docs/domain.md, with their people, ninety days of affairs and sensing, and their
shared resources.

plans.py names the region and plans its villages. One module per domain:
residents.py (grids, staff, households, residents, tags), requests.py, activities.py
(teams, activities, sign-ups, points), service_orders.py, notices.py, mediation.py,
sensing.py (devices, alerts), health.py (health records, readings) and resources.py;
village.py is the village as they all see it, bulk.py how they write; affairs.py puts
the affairs of one village together and region.py provisions and seeds the region.
The history is written in bulk, but every state, place and balance in it is decided by
the domain's own rules (affairs.py says how).

Import from the modules: the package loads none of them, so that naming the region
costs nothing of building it.
"""
