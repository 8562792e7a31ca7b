"""The gateway serves the consoles' build: SPA fallback, caching, CSP, config, no escape."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest

from villagelink.platform.app import create_app, runtime_of

CONSOLE_HTML = "<!doctype html><title>console</title><div id=app></div>"
H5_HTML = "<!doctype html><title>h5</title><div id=app></div>"
GRAPHIQL_HTML = "<!doctype html><title>graphiql</title><div id=graphiql></div>"
# A chunk worth compressing and the copies Vite writes beside it (console/vite.config.ts).
CHUNK = b"export const labels = {" + b'"pending": "waiting", ' * 200 + b"}\n"
CHUNK_GZIP = gzip.compress(CHUNK)
CHUNK_BROTLI = b"brotli bytes stand-in: the gateway sends the file as it is"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build as Vite lays it out: two apps' pages, hashed assets, a public file."""
    root = tmp_path_factory.mktemp("dist")
    (root / "h5").mkdir()
    (root / "assets").mkdir()
    (root / "index.html").write_text(CONSOLE_HTML)
    (root / "h5" / "index.html").write_text(H5_HTML)
    (root / "graphiql").mkdir()
    (root / "graphiql" / "index.html").write_text(GRAPHIQL_HTML)
    (root / "h5" / "manifest.webmanifest").write_text("{}")
    (root / "assets" / "index-3f2a1b.js").write_text("console.log(1)")
    (root / "assets" / "labels-9c8d7e.js").write_bytes(CHUNK)
    (root / "assets" / "labels-9c8d7e.js.gz").write_bytes(CHUNK_GZIP)
    (root / "assets" / "labels-9c8d7e.js.br").write_bytes(CHUNK_BROTLI)
    (root / "favicon.svg").write_text("<svg/>")
    # What a traversal would be after: a file beside the build.
    (root.parent / "secret.txt").write_text("not for the web")
    return root


def app_with(settings, **changes):
    app = create_app(replace(settings, **changes))
    return app


@pytest.fixture(scope="module")
def served(settings, db, dist):
    app = app_with(
        settings,
        console_dist=dist,
        live_public_url="http://127.0.0.1:18001",
        s3_endpoint="http://minio.example.test:9000",
        s3_access_key="dev-only",
        s3_secret_key="dev-only-secret",
    )
    yield app.test_client()
    runtime_of(app).db.dispose()


def test_root_redirects_to_the_console(served):
    answer = served.get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/console/")


@pytest.mark.parametrize("path", ["/console", "/console/", "/console/requests/42/timeline"])
def test_console_routes_fall_back_to_the_console_page(served, path):
    answer = served.get(path)
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == CONSOLE_HTML
    assert "no-cache" in answer.headers["Cache-Control"]
    assert "max-age=31536000" not in answer.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/h5", H5_HTML),
        ("/h5/", H5_HTML),
        ("/h5/activities/7", H5_HTML),
        ("/graphiql", GRAPHIQL_HTML),
        ("/graphiql/callback", GRAPHIQL_HTML),
    ],
)
def test_the_other_apps_fall_back_to_their_own_page(served, path, page):
    answer = served.get(path)
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == page
    assert "Content-Security-Policy" in answer.headers


def test_files_of_the_build_are_served_as_themselves(served):
    assert served.get("/console/favicon.svg").get_data(as_text=True) == "<svg/>"
    assert served.get("/h5/manifest.webmanifest").get_data(as_text=True) == "{}"


def test_hashed_assets_are_cached_for_a_year_and_missing_ones_are_404(served):
    answer = served.get("/assets/index-3f2a1b.js")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # A missing asset is not the SPA page: a script tag must never get HTML.
    missing = served.get("/assets/index-000000.js")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, deflate", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, gzip;q=0.1", "gzip"),
        ("*", "br"),
        ("deflate", None),
        ("identity", None),
        (None, None),
    ],
)
def test_assets_go_as_the_precompressed_copy_the_browser_accepts(served, accept, coding):
    headers = {"Accept-Encoding": accept} if accept else {}
    answer = served.get("/assets/labels-9c8d7e.js", headers=headers)
    assert answer.status_code == 200
    assert answer.headers.get("Content-Encoding") == coding
    assert answer.mimetype == "text/javascript"
    body = answer.get_data()
    sent = {"br": CHUNK_BROTLI, "gzip": CHUNK_GZIP, None: CHUNK}[coding]
    assert body == sent
    assert int(answer.headers["Content-Length"]) == len(sent)
    if coding == "gzip":
        assert gzip.decompress(body) == CHUNK
    # Whichever copy went, caches learn that the answer depends on Accept-Encoding, and
    # the asset's other headers are those of every asset.
    assert "Accept-Encoding" in answer.headers["Vary"]
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_each_encoding_has_its_own_etag_and_revalidates(served):
    tags = set()
    for accept in ("br", "gzip", "identity"):
        first = served.get("/assets/labels-9c8d7e.js", headers={"Accept-Encoding": accept})
        tag = first.headers["ETag"]
        tags.add(tag)
        again = served.get(
            "/assets/labels-9c8d7e.js",
            headers={"Accept-Encoding": accept, "If-None-Match": tag},
        )
        assert again.status_code == 304
        assert "Accept-Encoding" in again.headers["Vary"]
    # A cache holding the gzip copy must never answer a Brotli request's revalidation.
    assert len(tags) == 3


def test_a_file_without_copies_goes_as_it_is_and_does_not_vary(served):
    answer = served.get("/assets/index-3f2a1b.js", headers={"Accept-Encoding": "gzip, br"})
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == "console.log(1)"
    assert "Content-Encoding" not in answer.headers
    assert "Accept-Encoding" not in answer.headers.get("Vary", "")


def test_pages_carry_a_strict_content_security_policy(served, settings):
    answer = served.get("/console/")
    policy = dict(
        directive.split(" ", 1)
        for directive in answer.headers["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'"
    issuer_origin = settings.public_url.rstrip("/")  # the development issuer is this gateway
    assert policy["connect-src"].split() == [
        "'self'",
        issuer_origin,
        "http://127.0.0.1:18001",
        "http://minio.example.test:9000",
    ]
    assert policy["img-src"].split() == [
        "'self'",
        "data:",
        "blob:",
        "http://minio.example.test:9000",
    ]
    assert "'unsafe-inline'" in policy["style-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["form-action"].split() == ["'self'", issuer_origin]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_policy_names_keycloak_when_it_is_the_issuer(settings, db, dist):
    app = app_with(settings, console_dist=dist, keycloak_url="https://sso.example.test")
    try:
        policy = app.test_client().get("/console/").headers["Content-Security-Policy"]
    finally:
        runtime_of(app).db.dispose()
    assert "connect-src 'self' https://sso.example.test " in policy
    assert "form-action 'self' https://sso.example.test" in policy


def test_config_names_the_issuer_clients_and_endpoints(served, settings):
    answer = served.get("/console/config.json")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.get_json() == {
        "issuer": settings.issuer,
        "consoleClientId": "villagelink-console",
        "residentsClientId": "villagelink-residents",
        "graphqlUrl": "/graphql",
        "liveUrl": "http://127.0.0.1:18001/graphql/stream",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/console/../../etc/passwd",
        "/console/..%2f..%2fetc%2fpasswd",
        "/console/%2e%2e/%2e%2e/etc/passwd",
        "/console/..%5c..%5csecret.txt",
        "/console/../secret.txt",
        "/console/%2e%2e%2fsecret.txt",
        "/h5/../../secret.txt",
        "/h5/%2e%2e/index.html",
        "/graphiql/..%2f..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/%2e%2e/index.html",
        "/console/%00index.html",
        "/console//etc/passwd",
    ],
)
def test_paths_out_of_the_build_are_refused(served, path):
    # Werkzeug redirects `//` to `/`: where that leads is checked too.
    answer = served.get(path, follow_redirects=True)
    body = answer.get_data(as_text=True)
    assert answer.status_code in (404, 200), (answer.status_code, body[:200])
    assert "not for the web" not in body
    assert "root:" not in body
    if answer.status_code == 200:
        # Only ever the app's own page, which then shows its "not found" route.
        assert body == CONSOLE_HTML


def test_a_missing_build_is_a_503_page_in_chinese(settings, db, tmp_path):
    app = app_with(settings, console_dist=tmp_path / "no-dist")
    try:
        client = app.test_client()
        for path in ("/console/", "/console/residents", "/h5/", "/assets/index-1.js"):
            answer = client.get(path)
            assert answer.status_code == 503, path
            body = answer.get_data(as_text=True)
            assert "控制台尚未构建" in body
            assert "make run" in body
            assert answer.content_type.startswith("text/html")
        # The configuration does not depend on the build.
        assert client.get("/console/config.json").status_code == 200
    finally:
        runtime_of(app).db.dispose()
