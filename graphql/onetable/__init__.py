"""One table (一张表) in the API: resident imports from sheets, exports, the template."""

from villagelink.graphql.onetable import mutations, types

bindables = [*types.bindables, *mutations.bindables]
