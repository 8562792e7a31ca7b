"""exportRegionFigures: the region's figures (片区总览) as an .xlsx, through the same
export machinery as a village's residents (storage/exports.py, jobs/onetable.py)."""

from __future__ import annotations

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.labels import enum_labels
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.linkage.region import region_stats, resolve_region
from villagelink.jobs.onetable import enqueue_region_export_removal
from villagelink.platform.region_exports import do_export_region, region_workbook
from villagelink.storage.exports import download, region_space
from villagelink.storage.factory import object_store

mutation = MutationType()


@mutation.field("exportRegionFigures")
def resolve_export_region_figures(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    # NOT_FOUND for anyone but the region's coordinators and platform admins.
    region = resolve_region(None, info, input["region"])
    stats = region_stats(ctx, region)
    labels = {
        row["value"].lower(): row["label"]
        for row in enum_labels(info.schema)
        if row["enum"] == "AlertKind"
    }
    data = region_workbook(region["name"], stats, lambda kind: labels.get(kind, kind))

    def run() -> dict:
        store = object_store(ctx.settings)
        with ctx.runtime.db.platform() as conn:
            export = do_export_region(
                conn,
                ctx.actor,
                store,
                region,
                data,
                villages=len(stats["villages"]),
                today=ctx.today,
            )
        ctx.after_commit(lambda: enqueue_region_export_removal(ctx.settings, region["id"]))
        return {"download": download(store, region_space(region["id"]), export)}

    return payload(run, "download")


bindables = [mutation]
