"""Live events (GraphQL subscriptions), served by the live process (platform/live/)."""

from villagelink.graphql.live.subscription import bindables

__all__ = ["bindables"]
