"""The lifecycle every local stand-in of an AWS endpoint shares, and a threaded HTTP/1.1 server.

``Service`` is the one start/stop/``with`` of the moto server (a child process), the model
server and the Function URLs (``LoopbackService``: a ``LoopbackHTTPServer`` in this process).
The in-process servers keep connections alive, as botocore and curl expect, so stopping one
also closes the idle connections whose threads would otherwise wait for another request.

Standard library only: the model server (its own interpreter, see tools/model_server) imports it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

Log = Callable[[str], None]


class Service:
    """Something that listens on ``host:port`` once started: ``start``/``stop``/``with``.

    Subclasses implement ``_start`` (returning the port it listens on: ``port=0`` asks for any
    free one) and ``_stop``. ``start`` and ``stop`` may be called more than once.
    """

    url_suffix: ClassVar[str] = ""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.running = False

    @property
    def url(self) -> str:
        if not self.running:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}{self.url_suffix}"

    def start(self) -> Self:
        if not self.running:
            self.port = self._start()
            self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._stop()

    def _start(self) -> int:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackService(Service):
    """A ``Service`` answered by ``handler`` on a ``LoopbackHTTPServer`` in this process.

    The handler reaches the service as ``self.server.app``; ``log`` gets server errors;
    ``wait_for_requests``: see ``LoopbackHTTPServer``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        handler: type[BaseHTTPRequestHandler],
        log: Log | None = None,
        wait_for_requests: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.handler = handler
        self.log_line: Log = log or (lambda _line: None)
        self.wait_for_requests = wait_for_requests
        self._httpd: LoopbackHTTPServer | None = None

    def _start(self) -> int:
        self._httpd = LoopbackHTTPServer(
            (self.host, self.port),
            self.handler,
            self,
            log=self.log_line,
            wait_for_requests=self.wait_for_requests,
        )
        self._httpd.start(f"{type(self).__name__}:{self._httpd.port}")
        return self._httpd.port

    def _stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.stop()


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
        handler: type[BaseHTTPRequestHandler],
        app: Any,
        *,
        log: Log,
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


def signal_event() -> threading.Event:
    """An event that SIGTERM and SIGINT (Ctrl-C) set: what a server's command line waits for."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def serve_until(stop: threading.Event, service: Service) -> None:
    """Let ``service`` serve until ``stop`` is set, then stop it."""
    try:
        while not stop.wait(1.0):
            pass
    finally:
        service.stop()
