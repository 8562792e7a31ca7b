"""The gateway's process: gunicorn's command line and the directory its workers share
their metrics through. `villagelink run` supervises it next to everything else;
`villagelink gateway` (a Kubernetes pod, the image's `gateway` role) becomes it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from villagelink.platform.embedded import port_is_free
from villagelink.platform.settings import Settings

GRACEFUL_TIMEOUT = 10  # gunicorn's own, for requests in flight


def metrics_dir(settings: Settings) -> Path:
    return settings.var_dir / "prometheus"


def reset_metrics_dir(settings: Settings) -> None:
    """Samples of a previous run's processes must not count in this one."""
    shutil.rmtree(metrics_dir(settings), ignore_errors=True)
    metrics_dir(settings).mkdir(parents=True)


class PortTaken(Exception):
    """Something already listens on the gateway's address."""


def refuse_a_taken_port(settings: Settings) -> None:
    """The workers bind with SO_REUSEPORT (see `gunicorn_command`), which the kernel lets
    any process of the same user share: a second gateway on the same port (another
    `villagelink run`, one left over) would quietly take a share of the connections
    instead of failing to bind. So a gateway starts only where nothing listens."""
    if not port_is_free(settings.http_port, settings.http_host):
        raise PortTaken(f"{settings.http_host}:{settings.http_port} is already in use")


def gunicorn_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--name",
        "villagelink",
        "-k",
        "gthread",
        "--workers",
        str(settings.gunicorn_workers),
        "--threads",
        str(settings.gunicorn_threads),
        "--bind",
        f"{settings.http_host}:{settings.http_port}",
        # A listening socket per worker (SO_REUSEPORT; gunicorn >= 24 binds it in each
        # worker, not the master): the kernel hashes each new connection to one of them.
        # With one shared socket the worker that woke first took a whole burst of
        # keep-alive clients, and the other stayed idle for as long as they lived.
        "--reuse-port",
        # The app is built once, in the master, and each worker forked from it serves at
        # once: a worker killed (its timeout, the OOM killer) is replaced in milliseconds,
        # and a master started again after its death imports the platform once, not once
        # per worker side by side (about a second of CPU each) while nobody is answered.
        # Nothing in `create_app` connects or starts a thread; the pools connect in the
        # workers.
        "--preload",
        # A line per request costs a small read a fifth of its CPU (the format, the
        # logging lock, a write): only when asked for. The metrics count every request.
        *(["--access-logfile", "-"] if settings.access_log else []),
        "--error-logfile",
        "-",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        # A request running longer than this gets its worker killed and replaced; the hooks
        # make that hold for gthread workers, whose heartbeat ignores their request threads.
        "--timeout",
        str(settings.gunicorn_timeout_seconds),
        "--config",
        "python:villagelink.platform.gunicorn_hooks",
        # gunicorn is driven by signals; a control socket in $HOME would be shared by
        # every `villagelink run` on the machine (and $HOME is read-only in a pod).
        "--no-control-socket",
        "villagelink.platform.app:create_app()",
    ]
