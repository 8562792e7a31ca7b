"""Service orders (便民服务预约) in the API: the catalogue, time slots and orders."""

from villagelink.graphql.service_orders import mutations, types

bindables = [*types.bindables, *mutations.bindables]
