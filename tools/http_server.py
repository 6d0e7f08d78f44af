"""A threaded HTTP/1.1 server for the local stand-ins of AWS endpoints, and its clean stop.

Both local servers (the SageMaker runtime of ``tools.model_server`` and the Function URLs of
``tools.function_urls``) keep connections alive, as botocore and curl expect, so stopping one
must also close the idle connections whose threads would otherwise wait for another request.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    """One thread per connection; ``start`` serves in the background, ``stop`` ends it all.

    ``wait_for_requests`` makes ``stop`` wait for requests in progress: needed where a
    request thread ran native code that must not be alive when the interpreter exits (libtorch
    aborts the process: "terminate called without an active exception").
    """

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type,
        app: Any,
        *,
        log: Callable[[str], None],
        wait_for_requests: bool = False,
    ) -> None:
        self.app = app
        self._log = log
        # socketserver's switches: non-daemon threads are joined by server_close().
        self.daemon_threads = not wait_for_requests
        self.block_on_close = wait_for_requests
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections, release the port."""
        self.shutdown()
        self.close_connections()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away mid-request: nothing to answer
        self._log(f"error serving {client_address}: {traceback.format_exc().rstrip()}")

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
