"""GraphQL of the five-village linkage: agreements and the exchange log, the
neighbour feed, region queries, transfers and joint cases."""

from villagelink.graphql.linkage import (
    agreements,
    feed,
    joint_cases,
    region,
    region_export,
    sync_status,
    transfers,
)

bindables = [
    *agreements.bindables,
    *feed.bindables,
    *region.bindables,
    *region_export.bindables,
    *transfers.bindables,
    *joint_cases.bindables,
    *sync_status.bindables,
]
