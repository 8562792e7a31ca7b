"""Writes of the one table: import jobs and their steps, and exports.

An import job goes queued → running → finished, or to failed (from queued or
running) when its sheet cannot be read or its background job gives up. A retry
of the job finds it running and resumes after the rows already done; finished
and failed are final. The job's steps are these actions; the residents
themselves are written by the resident actions (importing.py), row by row.

Audit: the start and the end of an import (with its counts) and every export
are one entry each; the rows add their own through the resident actions.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from sqlalchemy import Connection, case, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from villagelink.platform.audit import Actor, record
from villagelink.platform.identity.principal import Principal
from villagelink.storage.exports import Export, new_export, put_export, remove_expired
from villagelink.storage.store import ObjectStore
from villagelink.tenants import clock
from villagelink.tenants.attachments.actions import do_attach_file
from villagelink.tenants.attachments.declarations import declare_attachments
from villagelink.tenants.onetable import queries
from villagelink.tenants.onetable.importing import FAILED as ROW_FAILED
from villagelink.tenants.onetable.importing import OUTCOMES, RowOutcome
from villagelink.tenants.onetable.sheet import (
    BIRTH_DATE,
    BUILDING,
    COLUMNS,
    GENDER,
    GENDER_LABELS,
    GRID,
    HOUSEHOLD,
    ID_NUMBER,
    NAME,
    PHONE,
    RELATION,
    RELATION_LABELS,
    RESIDENT_NO,
    ROOM,
    TAGS,
    UNIT,
    Problem,
    export_workbook,
    tag_labels,
)
from villagelink.tenants.onetable.tables import (
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    import_jobs,
    resident_exports,
)
from villagelink.tenants.onetable.validation import ExportSchema
from villagelink.tenants.residents.queries import Grids, ResidentFilter
from villagelink.tenants.sensitive import mask_id_number, mask_phone
from villagelink.tenants.user_errors import (
    INVALID_TRANSITION,
    NOT_FOUND,
    ActionFailed,
    UserError,
    refused,
    validated,
)

IMPORT_JOB = "ImportJob"
RESIDENT_EXPORT = "ResidentExport"

# step → (states it may start from, state it leads to)
STEPS = {
    "begin": ((QUEUED, RUNNING), RUNNING),
    "progress": ((RUNNING,), RUNNING),
    "finish": ((RUNNING,), FINISHED),
    "fail": ((QUEUED, RUNNING), FAILED),
}
# A report lists at most this many problems: a 20 MB sheet of bad rows must not
# make a report (and a row) of tens of megabytes. `failed` still counts every row.
MAX_REPORT = 1000
CUT_SHORT = Problem(
    None, None, f"问题太多，只列出了前{MAX_REPORT}个；请改正这些行后再导入一次"
).as_json()


def _awaiting_sheet(conn: Connection, record_id: str) -> bool:
    """Only the job being created takes its sheet: attachFile cannot add another later."""
    j = import_jobs
    if not record_id.isdigit():
        return False
    found = conn.execute(
        select(j.c.id).where(j.c.id == int(record_id), j.c.object_key.is_(None))
    ).first()
    return found is not None


declare_attachments(IMPORT_JOB, ["import_sheet"], _awaiting_sheet)


def job_actor(job: dict) -> Actor:
    """Who the job works for: the person who started it, with their request id, so
    the rows' audit entries name them."""
    return Actor(
        Principal(
            sub=job["created_by"],
            username=job["created_by_name"],
            roles=frozenset(job["created_by_roles"]),
            villages=frozenset(),
            regions=frozenset(),
            client_id=None,
        ),
        job["request_id"],
    )


def do_start_import(
    conn: Connection, actor: Actor, village: str, store: ObjectStore, key: str
) -> dict:
    """A queued import job for the uploaded sheet `key`. The sheet is checked and
    moved as any attachment is (this village's upload, not used yet, of the
    declared size, really an .xlsx) and kept with the job."""
    j = import_jobs
    principal = actor.principal
    with conn.begin_nested():
        job_id = conn.execute(
            j.insert()
            .values(
                created_by=principal.sub,
                created_by_name=principal.display_name,
                created_by_roles=sorted(principal.roles),
                request_id=actor.request_id,
            )
            .returning(j.c.id)
        ).scalar_one()
        sheet = do_attach_file(conn, actor, village, store, key, IMPORT_JOB, str(job_id))
        job = (
            conn.execute(
                j.update()
                .where(j.c.id == job_id)
                .values(object_key=sheet["object_key"], filename=sheet["filename"])
                .returning(*j.c)
            )
            .mappings()
            .one()
        )
    record(
        conn,
        actor,
        village=village,
        action="resident_import.start",
        subject_type=IMPORT_JOB,
        subject_id=job_id,
        details={"filename": job["filename"], "object_key": job["object_key"]},
    )
    return dict(job)


def _step(conn: Connection, job_id: int, step: str, **values) -> dict:
    """Move the job by `step` if its state allows; INVALID_TRANSITION otherwise."""
    sources, target = STEPS[step]
    j = import_jobs
    row = (
        conn.execute(
            j.update()
            .where(j.c.id == job_id, j.c.status.in_(sources))
            .values(status=target, updated_at=func.now(), **values)
            .returning(*j.c)
        )
        .mappings()
        .first()
    )
    if row is not None:
        return dict(row)
    status = conn.execute(select(j.c.status).where(j.c.id == job_id)).scalar()
    if status is None:
        raise refused("id", "导入任务不存在", NOT_FOUND)
    raise ActionFailed(
        [
            UserError(
                "status", f"导入任务状态为 {status}，不能{_STEP_NAMES[step]}", INVALID_TRANSITION
            )
        ]
    )


_STEP_NAMES = {
    "begin": "开始",
    "progress": "记录进度",
    "finish": "完成",
    "fail": "标记失败",
}


def do_begin_import(conn: Connection, village: str, job_id: int) -> dict:
    """queued → running (a retry finds it running and goes on). Bookkeeping of the
    job itself: not audited, the end is."""
    return _step(
        conn, job_id, "begin", started_at=func.coalesce(import_jobs.c.started_at, func.now())
    )


def do_set_total(conn: Connection, job_id: int, total_rows: int) -> dict:
    return _step(conn, job_id, "progress", total_rows=total_rows)


def _report_with(problems: list[Problem], room: int = 0):
    """The job's report with as many of `problems` appended as fit in MAX_REPORT
    (and `room` more)."""
    j = import_jobs
    limit = MAX_REPORT + room
    elements = func.jsonb_array_elements(literal([p.as_json() for p in problems], JSONB))
    added = elements.table_valued("value", with_ordinality="n").render_derived()
    fitting = (
        select(
            func.coalesce(
                func.jsonb_agg(aggregate_order_by(added.c.value, added.c.n)),
                literal([], JSONB),
            )
        )
        .where(added.c.n <= limit - func.jsonb_array_length(j.c.report))
        .scalar_subquery()
    )
    return j.c.report.op("||")(fitting)


def do_record_progress(conn: Connection, job_id: int, outcomes: list[RowOutcome]) -> dict:
    """Count a batch of rows as done, in the transaction that wrote them: a retry
    resumes after exactly the rows whose writes were committed."""
    j = import_jobs
    counts = {name: sum(o.outcome == name for o in outcomes) for name in OUTCOMES}
    return _step(
        conn,
        job_id,
        "progress",
        processed_rows=j.c.processed_rows + len(outcomes),
        report=_report_with([p for o in outcomes if o.outcome == ROW_FAILED for p in o.problems]),
        **{name: j.c[name] + counts[name] for name in OUTCOMES},
    )


def _summary(job: dict) -> dict:
    return {k: job[k] for k in ("filename", "total_rows", "processed_rows", *OUTCOMES)}


def do_finish_import(conn: Connection, actor: Actor, village: str, job_id: int) -> dict:
    j = import_jobs
    job = _step(
        conn,
        job_id,
        "finish",
        finished_at=func.now(),
        # A full report says that it was cut short.
        report=j.c.report.op("||")(
            case(
                (func.jsonb_array_length(j.c.report) >= MAX_REPORT, literal([CUT_SHORT], JSONB)),
                else_=literal([], JSONB),
            )
        ),
    )
    record(
        conn,
        actor,
        village=village,
        action="resident_import.finish",
        subject_type=IMPORT_JOB,
        subject_id=job_id,
        details=_summary(job),
    )
    return job


def do_fail_import(
    conn: Connection, actor: Actor, village: str, job_id: int, problems: list[Problem]
) -> dict:
    """The job gives up: the sheet could not be read, or the background job failed
    for good. Rows already imported stay; `problems` say why, in the report."""
    job = _step(
        conn,
        job_id,
        "fail",
        finished_at=func.now(),
        # Why it gave up goes in even when the report is full.
        report=_report_with(problems, room=len(problems)),
    )
    record(
        conn,
        actor,
        village=village,
        action="resident_import.fail",
        subject_type=IMPORT_JOB,
        subject_id=job_id,
        details={**_summary(job), "reasons": [p.message for p in problems]},
    )
    return job


# -- export ---------------------------------------------------------------------


def do_export_residents(
    conn: Connection,
    actor: Actor,
    village: str,
    store: ObjectStore,
    flt: ResidentFilter,
    *,
    allowed_grids: Grids,
    unmasked: bool,
    reason: str | None,
    today: date,
) -> Export:
    """The residents the filter matches (within `allowed_grids`) as an .xlsx in the
    village's store, ID numbers and phones masked unless `unmasked` (the caller
    must be allowed to, which the API checks, and give a reason). One audit entry;
    an unmasked one names every resident whose numbers it holds whole."""
    values = validated(ExportSchema(), {"unmasked": unmasked, "reason": reason})
    exported: list[int] = []

    def rows():
        for found in queries.residents_for_export(
            conn, flt, allowed_grids=allowed_grids, today=today
        ):
            exported.append(found.resident["id"])
            yield _export_row(found, unmasked)

    data = export_workbook(rows())
    export = new_export(f"居民信息-{village}-{today:%Y%m%d}.xlsx", len(exported), clock.now())
    e = resident_exports
    export_id = conn.execute(
        e.insert()
        .values(
            object_key=export.key,
            row_count=export.rows,
            unmasked=unmasked,
            created_by=actor.principal.sub,
            expires_at=export.expires_at,
        )
        .returning(e.c.id)
    ).scalar_one()
    put_export(store, village, export, data)
    record(
        conn,
        actor,
        village=village,
        action="resident.export",
        subject_type=RESIDENT_EXPORT,
        subject_id=export_id,
        fields=["id_number", "phone"] if unmasked else [],
        reason=values.get("reason"),
        details={
            "rows": len(exported),
            "unmasked": unmasked,
            "filter": {k: v for k, v in asdict(flt).items() if v is not None},
            **({"residents": exported} if unmasked else {}),
        },
    )
    return export


def _export_row(found: queries.ExportedResident, unmasked: bool) -> tuple:
    r, household, grid = found.resident, found.household, found.grid
    values = {
        NAME: r["name"],
        ID_NUMBER: r["id_number"] if unmasked else mask_id_number(r["id_number"]),
        GENDER: GENDER_LABELS[r["gender"]],
        BIRTH_DATE: r["birth_date"].isoformat(),
        PHONE: r["phone"] if unmasked else mask_phone(r["phone"]),
        RELATION: RELATION_LABELS.get(r["relation_to_head"]),
        BUILDING: household and household["building"],
        UNIT: household and household["unit_no"],
        ROOM: household and household["room_no"],
        GRID: grid and grid["code"],
        TAGS: tag_labels(found.tags) or None,
        HOUSEHOLD: household and household["id"],
        RESIDENT_NO: r["id"],
    }
    return tuple(values[c] for c in COLUMNS)


def do_remove_expired_exports(conn: Connection, store: ObjectStore, village: str) -> int:
    """Remove the village's exports whose download link has expired; returns how many."""
    return remove_expired(conn, store, village, resident_exports)
