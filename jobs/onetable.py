"""The one table's background work: importing a residents sheet, removing old exports
(a village's residents, and a region's figures).

Imports run on the `ingest` queue, with the uploaded files: above maintenance
and reports, so a clerk watching the progress of an import is not kept waiting
behind a stats roll-up or an export, and below sync and notify, so that a
5,000-row sheet never delays an alert. Export removals are `reports` work.

An import commits every BATCH_ROWS rows together with the job's progress, so
`ImportJob.processedRows` moves while it runs and a retried job (after a crash,
a restart, a timeout) resumes after exactly the rows already committed. Each
row is in a savepoint of its own (tenants/onetable/importing.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import Callback, Retry
from rq.job import Job
from sqlalchemy import Connection, select

from villagelink.jobs.queues import INGEST, REPORTS, enqueue
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform import models as pm
from villagelink.platform import region_exports
from villagelink.platform.db import Database, hold_lock
from villagelink.platform.settings import Settings
from villagelink.storage.exports import EXPORT_URL_LIFETIME
from villagelink.storage.factory import object_store
from villagelink.storage.store import ObjectStore
from villagelink.tenants import id_numbers
from villagelink.tenants.onetable import actions, queries
from villagelink.tenants.onetable.importing import (
    Repeat,
    RowImporter,
    RowOutcome,
    duplicate_outcome,
    duplicate_rows,
    identify,
)
from villagelink.tenants.onetable.sheet import (
    Problem,
    SheetRow,
    UnreadableSheet,
    read_sheet,
    row_input,
)
from villagelink.tenants.onetable.structure import StructureImporter
from villagelink.tenants.onetable.tables import FAILED, FINISHED, import_jobs
from villagelink.tenants.user_errors import ActionFailed

log = logging.getLogger(__name__)

BATCH_ROWS = 200
IMPORT_RETRY = Retry(max=3, interval=[10, 60, 300])
# A 20 MB sheet holds far more rows than a village has residents; half an hour
# is ample for those (5,000 new residents take about a minute, docs/onetable.md).
IMPORT_TIMEOUT = 1800
FAILURE_TTL = 7 * 24 * 3600
GAVE_UP = "导入任务多次出错后已停止，已导入的行保留；请重新上传或联系平台管理员"
# Removal runs a little after the URL's expiry, so a download in flight can finish.
EXPORT_REMOVAL_DELAY = EXPORT_URL_LIFETIME + timedelta(minutes=5)


def enqueue_import(settings: Settings, village: str, job_id: int) -> None:
    enqueue(
        settings,
        INGEST,
        import_residents,
        (village, job_id),
        retry=IMPORT_RETRY,
        timeout=IMPORT_TIMEOUT,
        failure_ttl=FAILURE_TTL,
        on_failure=Callback(give_up_import),
        description=f"import residents: {village} job {job_id}",
    )


def import_residents(village: str, job_id: int) -> dict | None:
    """The RQ job: import the sheet of import job `job_id`; returns its counts."""
    return run_import(job_database(), object_store(job_settings()), village, job_id)


def run_import(db: Database, store: ObjectStore, village: str, job_id: int) -> dict | None:
    """Import (or resume importing) one job's sheet. A job already finished or
    failed is left alone: None."""
    try:
        with db.tenant(village) as conn:
            job = actions.do_begin_import(conn, village, job_id)
    except ActionFailed:
        log.info("%s import %s: finished, failed or gone; nothing to do", village, job_id)
        return None
    actor = actions.job_actor(job)
    try:
        rows = read_sheet(store.read(village, job["object_key"]))
    except UnreadableSheet as unreadable:
        with db.tenant(village) as conn:
            actions.do_fail_import(conn, actor, village, job_id, unreadable.problems)
        return None
    repeats = duplicate_rows(row for row in rows if row.sheet is None)
    village_name = _village_name(db, village)
    with db.tenant(village) as conn:
        job = actions.do_set_total(conn, job_id, len(rows))
        places = queries.places(conn)
    for start in range(job["processed_rows"], len(rows), BATCH_ROWS):
        with db.tenant(village) as conn:
            _one_batch_at_a_time(conn, village)
            importer = RowImporter(conn, actor, village, village_name, places)
            structure = StructureImporter(conn, actor, village, village_name, places)
            outcomes = _import_batch(
                conn, importer, structure, rows[start : start + BATCH_ROWS], repeats
            )
            actions.do_record_progress(conn, job_id, outcomes)
    with db.tenant(village) as conn:
        job = actions.do_finish_import(conn, actor, village, job_id)
    return {k: job[k] for k in ("imported", "updated", "unchanged", "failed")}


def _one_batch_at_a_time(conn: Connection, village: str) -> None:
    """Two imports of one village take turns by batch, and a flat is looked up again
    before a household is made there (RowImporter._household): no flat gets two
    households. Held until the batch commits."""
    hold_lock(conn, f"onetable-import:{village}")


def _import_batch(
    conn: Connection,
    importer: RowImporter,
    structure: StructureImporter,
    batch: list[SheetRow],
    repeats: dict[int, Repeat],
) -> list[RowOutcome]:
    """One outcome per row, in the sheet's order (structure rows come first); the
    residents the batch names are read in one statement."""
    inputs = {
        row.number: row_input(row)
        for row in batch
        if row.sheet is None and row.number not in repeats
    }
    numbers = {
        number: id_numbers.normalise(given.person["id_number"])
        for number, given in inputs.items()
        if given.person.get("id_number")
    }
    registered = queries.registered_residents(
        conn,
        set(numbers.values()),
        {given.resident_no for given in inputs.values() if given.resident_no is not None},
    )
    return [
        RowOutcome(*structure.run(row))
        if row.sheet is not None
        else duplicate_outcome(row, repeats[row.number])
        if row.number in repeats
        else importer.run(inputs[row.number], identify(inputs[row.number], registered))
        for row in batch
    ]


def _village_name(db: Database, village: str) -> str:
    """For the address of households the import makes, as the demo writes them."""
    with db.platform() as conn:
        return conn.execute(
            select(pm.tenants.c.name).where(pm.tenants.c.slug == village)
        ).scalar_one()


def give_up_import(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: after the last retry, mark the import failed so that the
    console stops showing it as running. Earlier failures will be retried."""
    if job.retries_left:
        return
    village, job_id = job.args
    j = import_jobs
    with job_database().tenant(village) as conn:
        found = conn.execute(select(j).where(j.c.id == job_id)).mappings().first()
        if found is not None and found["status"] not in (FINISHED, FAILED):
            actor = actions.job_actor(dict(found))
            actions.do_fail_import(conn, actor, village, job_id, [Problem(None, None, GAVE_UP)])


def _enqueue_removal(settings: Settings, remove, owner: str) -> None:
    enqueue(
        settings,
        REPORTS,
        remove,
        (owner,),
        delay=EXPORT_REMOVAL_DELAY,
        failure_ttl=FAILURE_TTL,
        description=f"remove expired exports: {owner}",
    )


def enqueue_export_removal(settings: Settings, village: str) -> None:
    _enqueue_removal(settings, remove_expired_exports, village)


def enqueue_region_export_removal(settings: Settings, region_id: str) -> None:
    _enqueue_removal(settings, remove_expired_region_exports, region_id)


def remove_expired_exports(village: str) -> int:
    """Every expired export of the village, not only the one that scheduled this:
    a removal lost with Redis is caught up by the next export's."""
    with job_database().tenant(village) as conn:
        return actions.do_remove_expired_exports(conn, object_store(job_settings()), village)


def remove_expired_region_exports(region_id: str) -> int:
    """The same for a region's exports (the figures of its overview)."""
    with job_database().platform() as conn:
        return region_exports.do_remove_expired_region_exports(
            conn, object_store(job_settings()), region_id
        )
