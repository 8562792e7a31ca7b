"""Integrators' webhooks in the API: subscriptions with their deliveries and attempts."""

from villagelink.graphql.webhooks import mutations, types

bindables = [*types.bindables, *mutations.bindables]
