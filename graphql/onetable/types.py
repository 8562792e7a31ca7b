"""Import jobs and the import template under Village; who may import."""

from __future__ import annotations

from datetime import timedelta

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import XLSX
from villagelink.tenants import clock
from villagelink.tenants.onetable import queries
from villagelink.tenants.onetable.actions import IMPORT_JOB
from villagelink.tenants.onetable.sheet import TEMPLATE_VERSION, template_workbook

# Long enough to click the link the console shows; ask again for a fresh one.
TEMPLATE_URL_LIFETIME = timedelta(minutes=5)
TEMPLATE_FILENAME = "居民信息导入模板.xlsx"

village_type = ObjectType("Village")
import_job_type = node_object(IMPORT_JOB)


def require_import(ctx: RequestContext, slug: str) -> None:
    """Whoever manages the village (its admins, platform admins): an import places
    residents in households across the whole village. Grid workers register
    residents one by one."""
    ctx.require_manage(slug, "importing residents is for the village's admins")


def import_job_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        IMPORT_JOB,
        lambda conn, ids: {
            k: as_node(IMPORT_JOB, slug, row)
            for k, row in queries.import_jobs_by_ids(conn, ids).items()
        },
    )


def _fetch_import_job(ctx: RequestContext, village: str, key: str) -> dict | None:
    """By node(id): not found for those who may not import there."""
    if not ctx.access.can_manage(village):
        return None
    return fetch_by_int_key(import_job_loader)(ctx, village, key)


@village_type.field("importJobs")
def resolve_import_jobs(village: dict, info, first=None, after=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    require_import(ctx, slug)
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)
    return paginate(
        lambda limit: queries.import_job_page(conn, after_id=page.after_id, limit=limit),
        page,
        count=lambda: queries.import_job_count(conn),
        node=lambda row: as_node(IMPORT_JOB, slug, row),
    )


@village_type.field("residentImportTemplate")
def resolve_import_template(village: dict, info) -> dict:
    """The template is the same for every village; each keeps a copy in its own
    store (made on first ask), since URLs are signed per village."""
    ctx: RequestContext = info.context
    slug = village["slug"]
    require_import(ctx, slug)
    store = object_store(ctx.settings)
    key = f"templates/resident-import-v{TEMPLATE_VERSION}.xlsx"
    if store.stat(slug, key) is None:
        store.ensure_bucket(slug)
        store.put(slug, key, template_workbook(), XLSX)
    # Said a moment early rather than late: the URL is signed just after.
    expires_at = clock.now() + TEMPLATE_URL_LIFETIME
    url = store.presigned_get(
        slug, key, TEMPLATE_URL_LIFETIME, content_type=XLSX, filename=TEMPLATE_FILENAME
    )
    return {"url": url, "filename": TEMPLATE_FILENAME, "expires_at": expires_at}


@import_job_type.field("createdBy")
def resolve_created_by(job: dict, _info) -> str | None:
    return job["created_by_name"]


register_node_type(IMPORT_JOB, _fetch_import_job)

bindables = [village_type, import_job_type, connection_object("ImportJobConnection")]
