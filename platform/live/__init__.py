"""The live process: GraphQL subscriptions over graphql-sse, fed by Redis pub/sub."""
