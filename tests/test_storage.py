"""The object store and attachments, each test run against both backends: the local
disk (served by the application over real HTTP) and a real MinIO server.

The mechanics are tested on record types of the tests' own, backed by a small
table in each test village: `StorageTestRecord`, whose files everyone who reads
the village sees, and `StorageTestHiddenRecord`, declared without rules of reach.
How requests' and notices' rules keep to their domains is tested with them.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from PIL import Image
from rq import Queue
from sqlalchemy import Connection, select, text, update
from werkzeug.serving import make_server

from villagelink.graphql.core.ids import encode_id
from villagelink.jobs import storage as storage_jobs
from villagelink.jobs.queues import INGEST, QUEUES, redis_connection
from villagelink.jobs.worker import VillageWorker, reset_job_runtime
from villagelink.platform import models as pm
from villagelink.platform.app import create_app, runtime_of
from villagelink.platform.audit import Actor
from villagelink.platform.db import Database
from villagelink.platform.embedded import free_port
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.identity.principal import Principal
from villagelink.platform.settings import Settings
from villagelink.storage.factory import object_store
from villagelink.storage.local_backend import LocalStore
from villagelink.storage.local_backend import blueprint as local_blueprint
from villagelink.storage.purposes import JPEG, MB, PDF, PNG, WEBP, XLSX
from villagelink.storage.sniff import sniff_object
from villagelink.storage.store import ObjectStore
from villagelink.tenants import models as tm
from villagelink.tenants import provisioning
from villagelink.tenants.attachments import actions
from villagelink.tenants.attachments.declarations import any_writer, declare_attachments
from villagelink.tenants.user_errors import ActionFailed

from .conftest import TEST_REGION, new_village, new_village_slug
from .threaded_server import serving

RECORD = "StorageTestRecord"


def _record_exists(conn: Connection, record_id: str) -> bool:
    if not record_id.isdigit():
        return False
    found = conn.execute(
        text("SELECT 1 FROM storage_test_records WHERE id = :id"), {"id": int(record_id)}
    )
    return found.first() is not None


def _every_record(_ctx, _village: str, record_ids: list[str]) -> set[str]:
    return set(record_ids)


# Whoever reads the village sees the test records' files; whoever writes it changes them.
declare_attachments(
    RECORD,
    ["request_photo", "import_sheet"],
    _record_exists,
    visible=_every_record,
    writable=any_writer,
)

# Declared without rules of reach: its files are for its own actions only.
HIDDEN = "StorageTestHiddenRecord"
declare_attachments(HIDDEN, ["request_photo"], _record_exists)

ACTOR = Actor(
    Principal(
        "storage-test", "测试员", frozenset({"village-admin"}), frozenset(), frozenset(), None
    )
)


# -- files ----------------------------------------------------------------------


def jpeg(width: int = 1200, height: int = 800) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 30)).save(out, "JPEG", quality=85)
    return out.getvalue()


def png_with_alpha() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (640, 480), (0, 120, 200, 128)).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def office_zip(folder: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{folder}/workbook.xml", "<workbook/>")
    return out.getvalue()


# -- backends -------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    settings: Settings
    app: Flask
    store: ObjectStore


@pytest.fixture(scope="module", params=["local", pytest.param("minio", marks=pytest.mark.minio)])
def backend(request, settings: Settings, db: Database, tmp_path_factory) -> Iterator[Backend]:
    """The application, served over real HTTP (the local backend's presigned URLs point
    at it), configured for one backend. A missing MinIO fails the minio tests."""
    port = free_port()
    configured = replace(
        settings,
        var_dir=tmp_path_factory.mktemp(f"var-{request.param}"),
        public_url=f"http://127.0.0.1:{port}",
    )
    if request.param == "minio":
        minio = request.getfixturevalue("minio")
        configured = replace(
            configured,
            s3_endpoint=minio.endpoint,
            s3_access_key=minio.access_key,
            s3_secret_key=minio.secret_key,
        )
    app = create_app(configured)
    try:
        with serving(make_server("127.0.0.1", port, app, threaded=True)):
            yield Backend(request.param, configured, app, object_store(configured))
    finally:
        runtime_of(app).db.dispose()


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return backend.store


def provision(db: Database, store: ObjectStore, records: int = 2) -> str:
    """A new village with its bucket, and a few test records (ids 1..records)."""
    slug = new_village(db, "存储村").slug
    store.ensure_bucket(slug)
    with db.tenant(slug) as conn:
        conn.execute(text("CREATE TABLE storage_test_records (id bigint PRIMARY KEY)"))
        conn.execute(
            text("INSERT INTO storage_test_records SELECT generate_series(1, :n)"), {"n": records}
        )
    return slug


@pytest.fixture
def place(db: Database, store: ObjectStore) -> str:
    return provision(db, store)


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> Iterator[Settings]:
    """Jobs read their settings from the environment, as in `villagelink worker`."""
    s = backend.settings
    env = {
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "VILLAGELINK_VAR_DIR": str(s.var_dir),
        "VILLAGELINK_PUBLIC_URL": s.public_url,
        "S3_ENDPOINT": s.s3_endpoint or "",
        "S3_ACCESS_KEY": s.s3_access_key or "",
        "S3_SECRET_KEY": s.s3_secret_key or "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_job_runtime()
    for name in QUEUES:
        Queue(name, connection=redis_connection(s)).empty()
    yield s
    reset_job_runtime()


def work_off(settings: Settings) -> None:
    """Run every queued job in forked work horses, as `villagelink worker` does."""
    connection = redis_connection(settings)
    VillageWorker(
        [Queue(name, connection=connection) for name in QUEUES], connection=connection
    ).work(burst=True)
    failed = Queue(INGEST, connection=connection).failed_job_registry
    assert failed.count == 0, [
        failed.job_class.fetch(i, connection).exc_info for i in failed.get_job_ids()
    ]


# -- steps ----------------------------------------------------------------------


def create_upload(
    db: Database,
    store: ObjectStore,
    slug: str,
    purpose: str,
    content_type: str,
    size: int,
    filename: str = "照片.jpg",
) -> dict:
    with db.tenant(slug) as conn:
        return actions.do_create_upload(
            conn,
            ACTOR,
            slug,
            store,
            {"purpose": purpose, "filename": filename, "content_type": content_type, "size": size},
        )


def put(ticket, data: bytes) -> requests.Response:
    """Upload the way a browser or phone would: a plain HTTP request, no credentials."""
    return requests.request(
        ticket.method, ticket.url, data=data, headers=ticket.headers, timeout=60
    )


def upload(
    db: Database,
    store: ObjectStore,
    slug: str,
    data: bytes,
    *,
    purpose: str = "request_photo",
    content_type: str = JPEG,
    declared_size: int | None = None,
) -> str:
    created = create_upload(
        db,
        store,
        slug,
        purpose,
        content_type,
        len(data) if declared_size is None else declared_size,
    )
    response = put(created["ticket"], data)
    assert response.status_code == 200, response.text
    return created["key"]


def attach(
    db: Database,
    store: ObjectStore,
    slug: str,
    key: str,
    record_type: str = RECORD,
    record_id: str | None = "1",
) -> dict:
    with db.tenant(slug) as conn:
        return actions.do_attach_file(conn, ACTOR, slug, store, key, record_type, record_id)


def refused(db, store, slug, key, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(ActionFailed) as failure:
        attach(db, store, slug, key, **kwargs)
    return [(e.field, e.code) for e in failure.value.errors]


def attachment_rows(db: Database, slug: str) -> list:
    with db.tenant(slug) as conn:
        return conn.execute(select(tm.attachments).order_by(tm.attachments.c.id)).all()


# -- the store itself -----------------------------------------------------------


def test_provisioning_makes_a_private_space_per_village(db, store):
    place = provisioning.create_village(db, new_village_slug(), "存储村", TEST_REGION, store).slug
    store.put(place, "probe/hello.txt", b"hello", "text/plain")
    url = store.presigned_get(place, "probe/hello.txt", timedelta(minutes=1))
    assert requests.get(url, timeout=10).content == b"hello"
    # Without the signature the object is not public.
    unsigned = url.split("?", 1)[0]
    assert requests.get(unsigned, timeout=10).status_code == 403
    # Provisioning again is harmless.
    provisioning.create_village(db, place, "存储村", TEST_REGION, store)
    assert store.read(place, "probe/hello.txt") == b"hello"


def test_upload_through_presigned_put_then_download(db, store, place):
    photo = jpeg()
    key = upload(db, store, place, photo)
    row = attach(db, store, place, key)

    assert (row["content_type"], row["size"], row["filename"]) == (JPEG, len(photo), "照片.jpg")
    # Moved out of the upload URL's reach.
    assert row["object_key"] != key
    assert store.stat(place, key) is None
    url = store.presigned_get(
        place, row["object_key"], timedelta(minutes=1), content_type=JPEG, filename=row["filename"]
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == photo
    assert response.headers["Content-Type"] == JPEG
    assert "UTF-8''%E7%85%A7%E7%89%87.jpg" in response.headers["Content-Disposition"]
    # Each upload is attached once.
    assert refused(db, store, place, key) == [("key", "NOT_FOUND")]


def test_every_purpose_accepts_its_own_types(db, store, place):
    for data, purpose, content_type in [
        (png_with_alpha(), "request_photo", PNG),
        (office_zip("xl"), "import_sheet", XLSX),
    ]:
        row = attach(
            db,
            store,
            place,
            upload(db, store, place, data, purpose=purpose, content_type=content_type),
        )
        assert row["content_type"] == content_type
        assert sniff_object(store, place, row["object_key"]) == content_type


def test_wrong_type_is_refused_and_removed(db, store, place):
    # A PDF sent as a photo, and a Word file (a ZIP too) sent as a spreadsheet.
    for data, purpose, content_type in [
        (pdf(), "request_photo", PNG),
        (office_zip("word"), "import_sheet", XLSX),
    ]:
        key = upload(db, store, place, data, purpose=purpose, content_type=content_type)
        assert refused(db, store, place, key) == [("key", "MISMATCH")]
        assert store.stat(place, key) is None
    assert attachment_rows(db, place) == []
    # Only the video's claim is checked at first: the type it names is not for photos.
    with pytest.raises(ActionFailed) as failure:
        create_upload(db, store, place, "request_photo", "video/mp4", 1000)
    assert [(e.field, e.code) for e in failure.value.errors] == [("contentType", "INVALID")]


def test_oversize_is_refused_before_and_after_upload(db, backend, store, place):
    with pytest.raises(ActionFailed) as failure:
        create_upload(db, store, place, "request_photo", JPEG, 10 * MB + 1)
    assert [(e.field, e.code) for e in failure.value.errors] == [("size", "TOO_LARGE")]
    with pytest.raises(ActionFailed) as failure:
        create_upload(db, store, place, "notice_attachment", PDF, 21 * MB, "通知.pdf")
    assert [(e.field, e.code) for e in failure.value.errors] == [("size", "TOO_LARGE")]

    # More bytes than declared: refused at attach, and gone.
    photo = jpeg()
    key = upload(db, store, place, photo, declared_size=len(photo) - 100)
    assert refused(db, store, place, key) == [("key", "MISMATCH")]
    assert store.stat(place, key) is None

    # Over the purpose's limit although declared within it: the local backend refuses
    # the body itself; S3 cannot bound a presigned PUT, so attach refuses it there.
    created = create_upload(db, store, place, "request_photo", JPEG, 10 * MB)
    response = put(created["ticket"], jpeg() + b"\0" * (10 * MB))
    if backend.name == "local":
        assert response.status_code == 413
    else:
        assert response.status_code == 200
        assert refused(db, store, place, created["key"]) == [("key", "TOO_LARGE")]
    assert store.stat(place, created["key"]) is None


def test_expired_urls_are_refused(store, place):
    # Long enough for the first GET to come within it on a loaded machine (with 1 s, a
    # busy run's GET came after it), short enough to wait out.
    lifetime = timedelta(seconds=3)
    ticket = store.presigned_put(place, "probe/late.jpg", JPEG, lifetime, MB)
    url = store.presigned_get(place, "probe/early.txt", lifetime)
    store.put(place, "probe/early.txt", b"early", "text/plain")
    assert requests.get(url, timeout=10).status_code == 200
    # Expiry has whole-second resolution: poll until the GET, signed at the same time
    # as the PUT, is refused, rather than sleeping a fixed margin.
    deadline = time.monotonic() + 30
    while requests.get(url, timeout=10).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert put(ticket, jpeg()).status_code == 403
    assert store.stat(place, "probe/late.jpg") is None
    assert requests.get(url, timeout=10).status_code == 403


def test_a_url_for_one_village_reaches_nothing_of_another(db, store, place):
    other = provision(db, store)
    for slug in (place, other):
        store.put(slug, "probe/same-key.txt", slug.encode(), "text/plain")
    mine_get = store.presigned_get(place, "probe/same-key.txt", timedelta(minutes=1))
    theirs_get = store.presigned_get(other, "probe/same-key.txt", timedelta(minutes=1))
    mine_put = store.presigned_put(place, "probe/new.jpg", JPEG, timedelta(minutes=1), MB)
    theirs_put = store.presigned_put(other, "probe/new.jpg", JPEG, timedelta(minutes=1), MB)

    def retarget(signed: str, target: str) -> str:
        """`signed`'s signature and query on `target`'s bucket and key."""
        return urlsplit(signed)._replace(path=urlsplit(target).path).geturl()

    assert requests.get(mine_get, timeout=10).content == place.encode()
    assert requests.get(retarget(mine_get, theirs_get), timeout=10).status_code == 403
    response = requests.put(
        retarget(mine_put.url, theirs_put.url), data=jpeg(), headers=mine_put.headers, timeout=10
    )
    assert response.status_code == 403
    assert store.stat(other, "probe/new.jpg") is None
    assert store.read(other, "probe/same-key.txt") == other.encode()


# -- attaching ------------------------------------------------------------------


def test_attach_needs_a_declared_type_an_existing_record_and_a_fitting_purpose(db, store, place):
    key = upload(db, store, place, jpeg())
    assert refused(db, store, place, key, record_type="Resident") == [("recordType", "INVALID")]
    assert refused(db, store, place, key, record_id="99") == [("recordId", "NOT_FOUND")]
    assert refused(db, store, place, key, record_id=None) == [("recordId", "NOT_FOUND")]
    notice = upload(db, store, place, pdf(), purpose="notice_attachment", content_type=PDF)
    assert refused(db, store, place, notice) == [("key", "INVALID")]
    # Another village's upload key is not this village's.
    other = provision(db, store)
    assert refused(db, store, other, key) == [("key", "NOT_FOUND")]
    # Nothing was removed by refusals that did not look at the file.
    assert attach(db, store, place, key)["record_id"] == "1"


def test_attach_before_upload_finds_no_file(db, store, place):
    created = create_upload(db, store, place, "request_photo", JPEG, 1000)
    assert refused(db, store, place, created["key"]) == [("key", "NOT_FOUND")]


# -- jobs -----------------------------------------------------------------------


def test_thumbnail_job_makes_a_small_webp(db, store, place, jobs):
    big = attach(db, store, place, upload(db, store, place, jpeg(2000, 1000)))
    clear = attach(db, store, place, upload(db, store, place, png_with_alpha(), content_type=PNG))
    sheet = attach(
        db,
        store,
        place,
        upload(db, store, place, office_zip("xl"), purpose="import_sheet", content_type=XLSX),
    )
    for row in (big, clear, sheet):
        storage_jobs.enqueue_thumbnail(jobs, place, row["id"])
    work_off(jobs)

    rows = {row.id: row for row in attachment_rows(db, place)}
    assert rows[sheet["id"]].thumbnail_key is None
    for row, mode in ((big, "RGB"), (clear, "RGBA")):
        key = rows[row["id"]].thumbnail_key
        assert key == row["object_key"] + ".thumb.webp"
        with Image.open(io.BytesIO(store.read(place, key))) as thumb:
            assert thumb.format == "WEBP"
            assert max(thumb.size) == 320
            assert thumb.mode == mode
    assert sniff_object(store, place, rows[big["id"]].thumbnail_key) == WEBP


def test_deleting_a_record_removes_its_objects(db, store, place, jobs):
    first = attach(db, store, place, upload(db, store, place, jpeg()))
    second = attach(db, store, place, upload(db, store, place, jpeg(300, 300)))
    kept = attach(db, store, place, upload(db, store, place, jpeg()), record_id="2")
    storage_jobs.enqueue_thumbnail(jobs, place, first["id"])
    work_off(jobs)

    with db.tenant(place) as conn:
        ids = actions.do_remove_record_attachments(conn, ACTOR, place, RECORD, "1")
    assert sorted(ids) == [first["id"], second["id"]]
    storage_jobs.enqueue_removal(jobs, place, ids)
    work_off(jobs)

    for row in (first, second):
        assert store.stat(place, row["object_key"]) is None
        assert store.stat(place, actions.thumbnail_key(row["object_key"])) is None
    assert [row.id for row in attachment_rows(db, place)] == [kept["id"]]
    assert store.stat(place, kept["object_key"]) is not None


def test_sweep_removes_abandoned_uploads_and_lost_removals(db, store, place, jobs):
    abandoned = upload(db, store, place, jpeg())
    lost = attach(db, store, place, upload(db, store, place, jpeg()))
    with db.tenant(place) as conn:
        conn.execute(
            update(tm.uploads)
            .where(tm.uploads.c.object_key == abandoned)
            .values(expires_at=text("now() - interval '2 hours'"))
        )
        actions.do_detach_file(conn, ACTOR, place, lost["id"])  # its job never ran

    job = Queue(INGEST, connection=redis_connection(jobs)).enqueue(
        storage_jobs.sweep_village_objects, place
    )
    work_off(jobs)

    assert job.return_value() == {"attachments": 1, "uploads": 1}
    assert store.stat(place, abandoned) is None
    assert store.stat(place, lost["object_key"]) is None
    assert attachment_rows(db, place) == []


# -- through GraphQL ------------------------------------------------------------

CREATE = """mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) {
  upload { key url method headers { name value } expiresAt }
  userErrors { field message code } } }"""
ATTACH = """mutation($input: AttachFileInput!) { attachFile(input: $input) {
  attachment { id recordType purpose filename contentType size url thumbnailUrl }
  userErrors { field message code } } }"""
DETACH = """mutation($id: ID!) { detachFile(input: {id: $id}) {
  detachedId userErrors { field code } } }"""
NODE = """query($id: ID!) { node(id: $id) { ... on Attachment { filename thumbnailUrl } } }"""


@pytest.fixture
def gql_on(backend: Backend):
    client = backend.app.test_client()

    def post(query: str, role: str, variables: dict | None = None, **scope):
        token = mint_for_role(backend.settings, role, **scope)
        response = client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.get_json()

    return post


def ticket_input(slug: str, data: bytes, **overrides) -> dict:
    return {
        "village": slug,
        "purpose": "REQUEST_PHOTO",
        "filename": "门前积水.jpg",
        "contentType": JPEG,
        "size": len(data),
        **overrides,
    }


def test_graphql_upload_attach_read_detach(db, backend, place, gql_on, jobs):
    photo = jpeg()
    body = gql_on(CREATE, "grid-worker", {"input": ticket_input(place, photo)}, village=place)
    created = body["data"]["createUploadUrl"]
    assert created["userErrors"] == []
    ticket = created["upload"]
    assert ticket["method"] == "PUT"
    headers = {h["name"]: h["value"] for h in ticket["headers"]}
    assert requests.put(ticket["url"], data=photo, headers=headers, timeout=30).status_code == 200

    record = encode_id(RECORD, place, 1)
    attach_input = {
        "village": place,
        "key": ticket["key"],
        "recordType": RECORD,
        "recordId": record,
    }
    body = gql_on(ATTACH, "village-admin", {"input": attach_input}, village=place)
    payload = body["data"]["attachFile"]
    assert payload["userErrors"] == []
    attachment = payload["attachment"]
    assert {
        k: attachment[k]
        for k in ("recordType", "purpose", "filename", "contentType", "size", "thumbnailUrl")
    } == {
        "recordType": RECORD,
        "purpose": "REQUEST_PHOTO",
        "filename": "门前积水.jpg",
        "contentType": JPEG,
        "size": len(photo),
        "thumbnailUrl": None,
    }
    assert requests.get(attachment["url"], timeout=10).content == photo

    # The thumbnail job was enqueued once the request had committed.
    work_off(jobs)
    body = gql_on(NODE, "regional-coordinator", {"id": attachment["id"]}, region=TEST_REGION)
    thumbnail = requests.get(body["data"]["node"]["thumbnailUrl"], timeout=10)
    assert thumbnail.status_code == 200
    assert thumbnail.content.startswith(b"RIFF")

    body = gql_on(DETACH, "platform-admin", {"id": attachment["id"]})
    assert body["data"]["detachFile"] == {"detachedId": attachment["id"], "userErrors": []}
    work_off(jobs)
    assert attachment_rows(db, place) == []
    body = gql_on(NODE, "platform-admin", {"id": attachment["id"]})
    assert body["data"]["node"] is None

    with db.platform() as conn:
        logged = set(
            conn.execute(
                select(pm.audit_log.c.action).where(pm.audit_log.c.village == place)
            ).scalars()
        )
    assert {"upload.create", "attachment.create", "attachment.detach"} <= logged


def test_graphql_refusals(db, backend, place, gql_on):
    photo = jpeg()
    # Readers may not upload; another village's admin does not see this village.
    body = gql_on(
        CREATE, "regional-coordinator", {"input": ticket_input(place, photo)}, region=TEST_REGION
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = provision(db, backend.store)
    body = gql_on(CREATE, "village-admin", {"input": ticket_input(place, photo)}, village=other)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    body = gql_on(
        CREATE,
        "village-admin",
        {"input": ticket_input(place, photo, contentType="text/html", size=11 * MB)},
        village=place,
    )
    assert body["data"]["createUploadUrl"]["upload"] is None
    assert {(e["field"], e["code"]) for e in body["data"]["createUploadUrl"]["userErrors"]} == {
        ("contentType", "INVALID"),
        ("size", "TOO_LARGE"),
    }

    # A PDF uploaded as a photo: refused at attach and removed.
    body = gql_on(CREATE, "village-admin", {"input": ticket_input(place, pdf())}, village=place)
    ticket = body["data"]["createUploadUrl"]["upload"]
    requests.put(ticket["url"], data=pdf(), headers={"Content-Type": JPEG}, timeout=10)
    attach_input = {
        "village": place,
        "key": ticket["key"],
        "recordType": RECORD,
        "recordId": encode_id(RECORD, place, 1),
    }
    body = gql_on(ATTACH, "village-admin", {"input": attach_input}, village=place)
    assert body["data"]["attachFile"]["attachment"] is None
    assert [(e["field"], e["code"]) for e in body["data"]["attachFile"]["userErrors"]] == [
        ("key", "MISMATCH")
    ]
    assert backend.store.stat(place, ticket["key"]) is None

    # A record ID of another village or type is not found here.
    for record in (encode_id(RECORD, other, 1), encode_id("Resident", place, 1), "garbage"):
        body = gql_on(
            ATTACH, "village-admin", {"input": {**attach_input, "recordId": record}}, village=place
        )
        assert [(e["field"], e["code"]) for e in body["data"]["attachFile"]["userErrors"]] == [
            ("recordId", "NOT_FOUND")
        ]
    body = gql_on(
        DETACH, "village-admin", {"id": encode_id("Attachment", place, 999)}, village=place
    )
    assert body["data"]["detachFile"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]


def test_a_type_without_rules_of_reach_keeps_its_files_from_the_api(db, store, place, gql_on):
    """What reaching the village gives is not enough: attachment IDs are sequential."""
    hidden = attach(db, store, place, upload(db, store, place, jpeg()), record_type=HIDDEN)
    hidden_id = encode_id("Attachment", place, hidden["id"])
    body = gql_on(NODE, "platform-admin", {"id": hidden_id})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Not found to detach either, exactly like an attachment that does not exist.
    body = gql_on(DETACH, "village-admin", {"id": hidden_id}, village=place)
    assert body["data"]["detachFile"] == {
        "detachedId": None,
        "userErrors": [{"field": "id", "code": "NOT_FOUND"}],
    }
    attach_input = {
        "village": place,
        "key": upload(db, store, place, jpeg()),
        "recordType": HIDDEN,
        "recordId": encode_id(HIDDEN, place, 1),
    }
    body = gql_on(ATTACH, "platform-admin", {"input": attach_input})
    assert [(e["field"], e["code"]) for e in body["data"]["attachFile"]["userErrors"]] == [
        ("recordId", "NOT_FOUND")
    ]
    assert [(row.id, row.status) for row in attachment_rows(db, place)] == [
        (hidden["id"], "active")
    ]


def test_detach_needs_a_record_that_takes_changes(db, store, place, gql_on):
    """`exists` is asked when detaching too: a record that takes no changes to its files
    now (here: gone) keeps them."""
    row = attach(db, store, place, upload(db, store, place, jpeg()), record_id="2")
    with db.tenant(place) as conn:
        conn.execute(text("DELETE FROM storage_test_records WHERE id = 2"))
    body = gql_on(
        DETACH, "village-admin", {"id": encode_id("Attachment", place, row["id"])}, village=place
    )
    assert body["data"]["detachFile"] == {
        "detachedId": None,
        "userErrors": [{"field": "id", "code": "INVALID_TRANSITION"}],
    }
    assert [r.status for r in attachment_rows(db, place)] == ["active"]


def test_local_endpoint_serves_signed_keys_of_real_villages_only(tmp_path):
    """The local backend's own HTTP endpoint, beyond what the shared tests cover."""
    local = LocalStore(tmp_path / "objects", tmp_path / "key" / "signing-key", "http://x")
    app = Flask(__name__)
    app.register_blueprint(local_blueprint(local))
    client = app.test_client()
    local.put("liulin", "a/b.txt", b"secret", "text/plain")

    url = urlsplit(
        local.presigned_get(
            "liulin",
            "a/b.txt",
            timedelta(minutes=1),
            content_type="text/plain",
            filename="说明.txt",
        )
    )
    # The secret is made on first use, readable by its owner only.
    assert (tmp_path / "key" / "signing-key").stat().st_mode & 0o777 == 0o600
    response = client.get(f"{url.path}?{url.query}")
    assert response.data == b"secret"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    # The served type is signed: asking for another one breaks the signature.
    assert (
        client.get(f"{url.path}?{url.query.replace('text%2Fplain', 'text%2Fhtml')}").status_code
        == 403
    )
    for path in (
        "/objects/NotASlug/a/b.txt",
        "/objects/liulin/../liulin/a/b.txt",
        "/objects/liulin/a/..%2F..%2Fb.txt",
        "/objects/liulin/.hidden",
    ):
        assert client.get(f"{path}?{url.query}").status_code in (403, 404), path
    # A PUT URL bounds the body by its signed limit.
    ticket = local.presigned_put("liulin", "a/c.jpg", JPEG, timedelta(minutes=1), 10)
    put_url = urlsplit(ticket.url)
    assert client.put(f"{put_url.path}?{put_url.query}", data=b"x" * 11).status_code == 413
    assert local.stat("liulin", "a/c.jpg") is None
    assert client.put(f"{put_url.path}?{put_url.query}", data=b"x" * 10).status_code == 200
    assert local.read("liulin", "a/c.jpg") == b"x" * 10
