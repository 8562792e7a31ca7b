"""Keycloak and MinIO on loopback for `make services` and the tests, and the Helm
client that tests/test_helm.py checks the chart with.

Both servers are real and fetched the way this project's machines can: Keycloak's
server distribution from Maven Central (`mvn dependency:copy`), MinIO (and Helm)
built with `go install` at a pinned version. They are fetched once into the user's
cache (VILLAGELINK_CACHE_DIR, default ~/.cache/villagelink) and reused, so a
second start takes seconds. A fetch that is refused raises ServiceUnavailable
with the command's own error: the caller fails loudly, nothing is skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from villagelink.platform.embedded import free_port, port_is_free

KEYCLOAK_VERSION = "26.7.3"
# MinIO tags its releases RELEASE.<date>, which Go cannot resolve; this is the
# module proxy's pseudo-version of the source the pin stands for.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
HELM_VERSION = "v4.3.2"
REALM_FILE = Path(__file__).parent / "identity" / "realm-villagelink.json"
# The gateway's address the realm file's console clients name (redirect URIs, origins):
# `make run`'s. A server started for another address gets the file with that one instead.
REALM_PUBLIC_URL = "http://127.0.0.1:8000"

# Development defaults only: the servers listen on 127.0.0.1 and hold test data.
KEYCLOAK_ADMIN_USER = "admin"
KEYCLOAK_ADMIN_PASSWORD = "admin-dev-only"
MINIO_ROOT_USER = "villagelink"
MINIO_ROOT_PASSWORD = "villagelink-dev-only"


class ServiceUnavailable(RuntimeError):
    """A service could not be fetched or started; the message carries the cause."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "villagelink"
    path = Path(os.environ.get("VILLAGELINK_CACHE_DIR") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _fetch_lock(name: str) -> Iterator[None]:
    """One fetch at a time per artefact, across processes (tests, `make services`)."""
    with open(cache_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run_fetch(command: list[str], env: dict[str, str] | None = None, timeout: int = 3600) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise ServiceUnavailable(
            f"`{' '.join(command)}` failed ({result.returncode}):\n" + "\n".join(output[-20:])
        )


def keycloak_home() -> Path:
    """The unpacked Keycloak distribution, fetched from Maven Central on first use."""
    home = cache_dir() / f"keycloak-{KEYCLOAK_VERSION}"
    with _fetch_lock("keycloak"):
        if (home / "bin" / "kc.sh").exists():
            return home
        if shutil.which("mvn") is None:
            raise ServiceUnavailable("Maven (mvn) is needed to fetch Keycloak's distribution")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            _run_fetch(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "dependency:copy",
                    f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip",
                    f"-DoutputDirectory={tmp}",
                ]
            )
            archive = Path(tmp) / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            unpacked = Path(tmp) / f"keycloak-{KEYCLOAK_VERSION}"
            for script in (unpacked / "bin").glob("*.sh"):
                script.chmod(0o755)
            unpacked.rename(home)
    return home


def keycloak_database() -> Path:
    """Keycloak's H2 database with its schema made, the master realm's admin bootstrapped
    and the project's realm imported for `make run`'s address: made once per Keycloak
    version and realm file into the cache by a server started for it, copied by every
    KeycloakServer that starts without a database (each test run starts one)."""
    key = hashlib.sha256(
        REALM_FILE.read_bytes() + f"{KEYCLOAK_ADMIN_USER}:{KEYCLOAK_ADMIN_PASSWORD}".encode()
    ).hexdigest()[:12]
    database = cache_dir() / f"keycloak-{KEYCLOAK_VERSION}-database-{key}"
    with _fetch_lock("keycloak-database"):
        if database.exists():
            return database
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            server = KeycloakServer(
                Path(tmp), free_port(), free_port(), from_initial_database=False
            )
            try:
                server.start()
            finally:
                server.stop()
            shutil.move(str(Path(tmp) / "h2"), database)
    return database


def minio_binary() -> Path:
    """The MinIO server binary, built with `go install` on first use."""
    return _go_binary("minio", "github.com/minio/minio", MINIO_VERSION)


def helm_binary() -> Path:
    """The Helm client, built with `go install` on first use."""
    return _go_binary("helm", "helm.sh/helm/v4/cmd/helm", HELM_VERSION)


def _go_binary(name: str, package: str, version: str) -> Path:
    """`package@version` built once into the cache as `bin/<name>-<version>`."""
    binary = cache_dir() / "bin" / f"{name}-{version}"
    with _fetch_lock(name):
        if binary.exists():
            return binary
        if shutil.which("go") is None:
            raise ServiceUnavailable(f"Go is needed to build {name} (go install)")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as gobin:
            env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
            # Niced: a build takes minutes of every core, and tests may be running beside it.
            _run_fetch(["nice", "-n", "10", "go", "install", f"{package}@{version}"], env=env)
            binary.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(gobin) / name), binary)
    return binary


def _wait_for(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServiceUnavailable(f"{url} did not answer within {timeout:.0f}s; see {log}")


class _Server:
    """A child process with its log file and a clean stop."""

    name = "server"

    def __init__(self, data_dir: Path, port: int):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.log_path = self.data_dir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def _spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        if not port_is_free(self.port):
            raise ServiceUnavailable(f"{self.name}: port {self.port} is taken")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.process

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def realm_document(public_url: str) -> bytes:
    """The realm file with the consoles' redirect URIs and origins on `public_url` (the
    gateway's VILLAGELINK_PUBLIC_URL) instead of `make run`'s default."""
    return REALM_FILE.read_text().replace(REALM_PUBLIC_URL, public_url.rstrip("/")).encode()


class KeycloakServer(_Server):
    """`kc.sh start-dev` on loopback with the project's realm imported, its database an H2
    file under `data_dir`.

    A server for `make run`'s address starts from a copy of `keycloak_database()` when its
    directory has none yet: Keycloak then skips creating its schema, bootstrapping the
    master realm and importing the project's realm (half a minute of every first start).
    """

    name = "keycloak"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        management_port: int,
        *,
        public_url: str = REALM_PUBLIC_URL,
        from_initial_database: bool = True,
    ):
        super().__init__(data_dir, port)
        self.management_port = management_port
        self.public_url = public_url.rstrip("/")
        self.from_initial_database = from_initial_database and self.public_url == REALM_PUBLIC_URL
        self.realm = "villagelink"
        self.admin_username = KEYCLOAK_ADMIN_USER
        self.admin_password = KEYCLOAK_ADMIN_PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240) -> None:
        home = keycloak_home()
        h2 = self.data_dir / "h2"
        if self.from_initial_database and not h2.exists():
            shutil.copytree(keycloak_database(), h2)
        process = self._spawn(
            [
                str(home / "bin" / "kc.sh"),
                "start-dev",
                "--http-host=127.0.0.1",
                f"--http-port={self.port}",
                f"--http-management-port={self.management_port}",
                "--health-enabled=true",
                "--db=dev-file",
                f"--db-url=jdbc:h2:file:{h2}/keycloakdb;NON_KEYWORDS=VALUE",
            ],
            {
                "KC_BOOTSTRAP_ADMIN_USERNAME": self.admin_username,
                "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
                # Quarkus writes its temporary files here rather than into the shared home.
                "JAVA_OPTS_APPEND": f"-Djava.io.tmpdir={self.data_dir}",
            },
        )
        _wait_for(f"{self.url}/realms/master", timeout, process, self.log_path)
        self.import_realm()

    def admin_token(self) -> str:
        body = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_username,
                "password": self.admin_password,
            }
        ).encode()
        url = f"{self.url}/realms/master/protocol/openid-connect/token"
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as answer:
            return json.load(answer)["access_token"]

    def import_realm(self) -> None:
        """Create the realm from the export in the repository unless it exists."""
        headers = {
            "Authorization": f"Bearer {self.admin_token()}",
            "Content-Type": "application/json",
        }
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"{self.url}/admin/realms/{self.realm}", headers=headers),
                timeout=30,
            )
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        request = urllib.request.Request(
            f"{self.url}/admin/realms",
            method="POST",
            data=realm_document(self.public_url),
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=120):
            pass


class MinioServer(_Server):
    name = "minio"

    def __init__(self, data_dir: Path, port: int, console_port: int):
        super().__init__(data_dir, port)
        self.console_port = console_port
        self.access_key = MINIO_ROOT_USER
        self.secret_key = MINIO_ROOT_PASSWORD

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        binary = minio_binary()
        process = self._spawn(
            [
                str(binary),
                "server",
                str(self.data_dir / "data"),
                "--quiet",
                "--address",
                f"127.0.0.1:{self.port}",
                "--console-address",
                f"127.0.0.1:{self.console_port}",
            ],
            {
                "MINIO_ROOT_USER": self.access_key,
                "MINIO_ROOT_PASSWORD": self.secret_key,
                "MINIO_BROWSER": "off",
                "MINIO_UPDATE": "off",
            },
        )
        _wait_for(f"{self.endpoint}/minio/health/live", timeout, process, self.log_path)
