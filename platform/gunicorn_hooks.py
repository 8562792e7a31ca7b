"""gunicorn hooks that make its worker timeout cover requests, not only the worker's loop.

A gthread worker's main loop sends the arbiter its heartbeat whatever its request threads do,
so a request stuck in a thread (a lock wait with no timeout, a C call that never returns)
never trips `--timeout`: the worker keeps one thread fewer for ever. These hooks note when each
request started and hold the heartbeat back while any request has run longer than the timeout.
The arbiter then kills that worker (SIGABRT, then SIGKILL) one timeout later and starts a fresh
one. `platform/runner.py` loads them with `-c python:villagelink.platform.gunicorn_hooks`.

`post_worker_init` also moves what the worker holds once the app is loaded (the schema, the
tables' metadata, the modules: about 180,000 objects) out of the garbage collector's reach
(`gc.freeze`). They live as long as the worker, and every full collection walked them all:
a region of 1,000 villages allocates enough per request that one in eight paid 200-300 ms
of collection (bench/README.md, scale_villages.py). It also lets the youngest generation
grow to GC_YOUNG_OBJECTS before it is collected (Python's default is 700): a read of a
thousand villages' statistics makes some 100,000 objects, almost none of them in cycles,
and each young collection's survivors pushed the older generations to theirs. Measured in
one process on such a read, its p95 went from 104 ms to 53 ms (p50 46 to 35 ms).
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

_REQUESTS = "villagelink_requests"


# Container objects allocated (less those freed) before a young collection.
GC_YOUNG_OBJECTS = 10_000


def post_worker_init(worker: Any) -> None:
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
    started: dict[int, float] = {}
    lock = threading.Lock()
    setattr(worker, _REQUESTS, (started, lock))
    heartbeat = worker.notify

    def notify() -> None:
        with lock:
            oldest = min(started.values(), default=None)
        if oldest is None or time.monotonic() - oldest < worker.cfg.timeout:
            heartbeat()
        else:
            worker.log.warning(
                "a request has run for %.0f s; heartbeat held back so that this worker is replaced",
                time.monotonic() - oldest,
            )

    worker.notify = notify


def pre_request(worker: Any, _request: Any) -> None:
    started, lock = getattr(worker, _REQUESTS)
    with lock:
        started[threading.get_ident()] = time.monotonic()


def post_request(worker: Any, _request: Any, _environ: Any, _response: Any) -> None:
    started, lock = getattr(worker, _REQUESTS)
    with lock:
        started.pop(threading.get_ident(), None)
