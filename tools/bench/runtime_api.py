"""A local Lambda Runtime API (the 2018-06-01 interface awslambdaric polls), for cold starts.

One invocation at a time: ``invoke(event)`` queues an event; the runtime's
``GET /2018-06-01/runtime/invocation/next`` takes it, with Lambda's headers (request id,
deadline, invoked function ARN, trace id); ``POST .../invocation/{id}/response`` (or
``.../error``, or ``/runtime/init/error``) completes it and stamps when it arrived. That stamp,
minus the moment the process was started, is a cold start as a user meets it: interpreter
start, the runtime client, the handler's init, the first request.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "response", "error" or "init_error"
    body: Any
    arrived: float  # time.perf_counter() when the runtime posted it


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The bench kills each runtime after its answer, mid-poll: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    def __init__(self, function_arn: str, timeout_seconds: float = 300) -> None:
        self.function_arn = function_arn
        self.timeout_seconds = timeout_seconds
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the bench prints tables

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, b"{}")
                    return
                request_id, event = api._events.get()  # the runtime waits here between calls
                deadline_ms = int((time.time() + api.timeout_seconds) * 1000)
                trace_id = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"
                self._reply(
                    200,
                    json.dumps(event).encode(),
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": trace_id,
                    },
                )

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = (
                    "init_error"
                    if self.path == f"{PREFIX}/init/error"
                    else self.path.rsplit("/", 1)[-1]
                )
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                self._reply(202, b'{"status":"OK"}')
                api._outcomes.put(Outcome(kind, body, arrived))

            def _reply(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: dict[str, Any]) -> str:
        """Queue `event` for the runtime's next poll; returns its request id."""
        request_id = str(uuid.uuid4())
        self._events.put((request_id, event))
        return request_id

    def outcome(self, timeout: float) -> Outcome:
        """The next response or error the runtime posts; raises TimeoutError without one."""
        try:
            return self._outcomes.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from the runtime within {timeout:.0f} s") from None
