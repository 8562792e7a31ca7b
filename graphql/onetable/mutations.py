"""Starting an import and exporting residents: check reach, call the action, enqueue after."""

from __future__ import annotations

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.onetable.types import require_import
from villagelink.graphql.residents.types import resident_filter
from villagelink.jobs.onetable import enqueue_export_removal, enqueue_import
from villagelink.storage.exports import download
from villagelink.storage.factory import object_store
from villagelink.tenants.onetable import actions

mutation = MutationType()


@mutation.field("startResidentImport")
def resolve_start_resident_import(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    require_import(ctx, village)

    def run() -> dict:
        job = actions.do_start_import(
            ctx.tenant(village), ctx.actor, village, object_store(ctx.settings), input["key"]
        )
        ctx.after_commit(lambda: enqueue_import(ctx.settings, village, job["id"]))
        return {"import_job": as_node(actions.IMPORT_JOB, village, job)}

    return payload(run, "import_job")


@mutation.field("exportResidents")
def resolve_export_residents(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_write(village)
    unmasked = bool(input.get("unmasked"))
    if unmasked and not ctx.access.can_unmask(village):
        raise Forbidden("only the village's admin may export whole ID numbers and phones")
    flt = resident_filter(ctx, village, input.get("filter"))

    def run() -> dict:
        store = object_store(ctx.settings)
        export = actions.do_export_residents(
            ctx.tenant(village),
            ctx.actor,
            village,
            store,
            flt,
            allowed_grids=ctx.allowed_grids(village),
            unmasked=unmasked,
            reason=input.get("reason"),
            today=ctx.today,
        )
        ctx.after_commit(lambda: enqueue_export_removal(ctx.settings, village))
        return {"download": download(store, village, export), "rows": export.rows}

    return payload(run, "download", "rows")


bindables = [mutation]
