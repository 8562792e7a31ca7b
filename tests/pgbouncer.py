"""PgBouncer in transaction mode in front of the tests' PostgreSQL, as in production.

Debian's `pgbouncer` (1.18): transaction pooling, the embedded server's login and
password (SCRAM on both sides), loopback only. The gateway, the jobs and the processes
the tests start reach the database through it (their URL ends in `?pgbouncer=true`, see
platform/db.py); what needs a session of its own (migrations, pg_dump, the fixtures'
provisioning) keeps the direct URL.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from villagelink.platform.db import POOLED_MARKER
from villagelink.platform.embedded import POSTGRES_SYSTEM_USER, wait_for_port

PGBOUNCER = Path("/usr/sbin/pgbouncer")


class PgBouncer:
    def __init__(self, data_dir: Path, port: int, upstream_url: str):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.upstream = make_url(upstream_url)
        self.process: subprocess.Popen | None = None
        # PgBouncer refuses to run as root: as the embedded PostgreSQL's system user then.
        self.user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return (
            self.upstream.set(host="127.0.0.1", port=self.port)
            .update_query_dict({POOLED_MARKER: "true"})
            .render_as_string(hide_password=False)
        )

    def start(self) -> None:
        if not PGBOUNCER.exists():
            raise RuntimeError(f"{PGBOUNCER} is missing: apt-get install pgbouncer")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        up = self.upstream
        (self.data_dir / "userlist.txt").write_text(f'"{up.username}" "{up.password}"\n')
        (self.data_dir / "pgbouncer.ini").write_text(
            f"""[databases]
{up.database} = host={up.host} port={up.port} dbname={up.database}

[pgbouncer]
pool_mode = transaction
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self.data_dir / "userlist.txt"}
logfile = {self.data_dir / "pgbouncer.log"}
pidfile = {self.data_dir / "pgbouncer.pid"}
max_client_conn = 1000
; Server connections per database and user: above what the run's pools hold open at once.
default_pool_size = 40
"""
        )
        if self.user is not None:
            for path in (self.data_dir, *self.data_dir.parents):
                path.chmod(path.stat().st_mode | 0o011)
            subprocess.run(["chown", "-R", self.user, str(self.data_dir)], check=True)
        self.process = subprocess.Popen(
            [str(PGBOUNCER), "--quiet", str(self.data_dir / "pgbouncer.ini")],
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, 15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT: close the clients' and servers' connections at once and exit.
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=15)
