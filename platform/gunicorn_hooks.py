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

Keep-alive connections are evened out over the workers. Each worker listens on a socket
of its own (`--reuse-port`, platform/serving.py) and the kernel hashes each new
connection to one of them: a coin toss per connection, so eight clients split 5/3 or
worse two runs in three, and the worker with more served them on one interpreter lock
while the other idled. Each worker publishes how many connections it holds in memory
the master shares with all of them; a worker holding more than its even share answers
its next request with `Connection: close`, and the client's new connection is hashed
again. Eight clients settle at four and four within a few requests each.
"""

from __future__ import annotations

import gc
import mmap
import threading
import time
from typing import Any

_REQUESTS = "villagelink_requests"
_SLOT = "villagelink_slot"

# Connections each worker holds, by slot: anonymous shared memory mapped at import in the
# master (gunicorn loads this module there), and so the same memory in every worker it
# forks. More slots than any gateway runs workers.
SLOTS = 64
_CONNECTIONS = memoryview(mmap.mmap(-1, SLOTS * 4)).cast("i")


# Container objects allocated (less those freed) before a young collection.
GC_YOUNG_OBJECTS = 10_000


def pre_fork(server: Any, worker: Any) -> None:
    """In the master: the lowest slot no live worker holds."""
    taken = {getattr(w, _SLOT, None) for w in server.WORKERS.values()}
    slot = next(n for n in range(SLOTS) if n not in taken)
    _CONNECTIONS[slot] = 0
    setattr(worker, _SLOT, slot)


def child_exit(_server: Any, worker: Any) -> None:
    """In the master: a worker gone holds no connection any more."""
    slot = getattr(worker, _SLOT, None)
    if slot is not None:
        _CONNECTIONS[slot] = 0


def _publish(worker: Any) -> int:
    held = getattr(worker, "nr_conns", 0)
    _CONNECTIONS[getattr(worker, _SLOT)] = held
    return held


def post_worker_init(worker: Any) -> None:
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
    started: dict[int, float] = {}
    lock = threading.Lock()
    setattr(worker, _REQUESTS, (started, lock))
    heartbeat = worker.notify

    def notify() -> None:
        # Each turn of the worker's loop (at least once a second): a worker whose
        # clients left says so even when no request comes to it.
        _publish(worker)
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


def pre_request(worker: Any, request: Any) -> None:
    started, lock = getattr(worker, _REQUESTS)
    with lock:
        started[threading.get_ident()] = time.monotonic()
    held = _publish(worker)
    # The even share, rounded up: seven connections over two workers are four and three.
    share = -(-sum(_CONNECTIONS) // worker.cfg.workers)
    if held > share:
        # Answered with `Connection: close`, then closed: the client connects again.
        request.must_close = True


def post_request(worker: Any, _request: Any, _environ: Any, _response: Any) -> None:
    started, lock = getattr(worker, _REQUESTS)
    with lock:
        started.pop(threading.get_ident(), None)
