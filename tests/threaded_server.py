"""A loopback HTTP server the test serves from a thread of its own process."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

Server = TypeVar("Server", bound=socketserver.BaseServer)

# How often serve_forever looks whether shutdown() was called. socketserver's default,
# half a second, was paid at the end of every test with a server of its own (ten seconds
# of the fast suite's time, half of it in tests/test_webhooks.py).
SHUTDOWN_POLL = 0.02


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """`server` answers on a thread until the block ends; then it is shut and closed."""
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
