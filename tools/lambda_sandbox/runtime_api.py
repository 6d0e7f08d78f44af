"""The Lambda Runtime API and Extensions API of one local execution environment.

What a custom runtime (here AWS's Lambda Web Adapter, or its stand-in) talks to at
``AWS_LAMBDA_RUNTIME_API``:

* ``POST /2020-01-01/extension/register`` and ``GET .../extension/event/next`` (an extension
  that registers for no event waits there until the environment ends);
* ``GET /2018-06-01/runtime/invocation/next``: the first call ends the init phase; each call
  takes the next event, with Lambda's headers (request id, deadline, function ARN, trace id);
* ``GET /2018-06-01/runtime/restore/next`` (SnapStart): the snapshot would be taken here and
  the call return after a restore; locally there is no snapshot, so it returns at once;
* ``POST .../invocation/{id}/response``: buffered (``Content-Length``), or streamed
  (``Lambda-Runtime-Function-Response-Mode: streaming``, chunked): each chunk reaches the
  caller as it arrives; an error mid-stream comes as the trailers
  ``Lambda-Runtime-Function-Error-Type`` / ``-Body`` (base64);
* ``POST .../invocation/{id}/error`` and ``POST /2018-06-01/runtime/init/error``.

Standard library only.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tools.http_server import LoopbackHTTPServer

RUNTIME = "/2018-06-01/runtime"
EXTENSION = "/2020-01-01/extension"
STREAMING_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"


@dataclass(frozen=True)
class StreamEnd:
    """The end of a response: ``error`` is Lambda's error document if the function failed."""

    error: dict[str, Any] | None = None


@dataclass
class Invocation:
    request_id: str
    event: dict[str, Any]
    deadline_ms: int
    invoked_function_arn: str
    # bytes (a body chunk, as the runtime wrote it) or StreamEnd, in order.
    parts: queue.Queue[bytes | StreamEnd] = field(default_factory=queue.Queue)
    streamed: bool = False  # the runtime answered in streaming mode
    content_type: str = "application/json"
    deadline: float = 0.0  # time.monotonic() when the function times out
    finished: bool = False  # the runtime completed its answer (a response or an error)
    answered_at: float = 0.0  # time.perf_counter() when the runtime began to post its answer

    def chunks(self, deadline: float | None = None) -> Iterator[bytes]:
        """The response body as it arrives; raises ``TimeoutError`` at ``deadline``
        (``time.monotonic()``; default: the invocation's) and ``RuntimeInvocationError`` if
        the function failed."""
        deadline = deadline or self.deadline
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self.request_id)
            try:
                part = self.parts.get(timeout=remaining)
            except queue.Empty:
                raise TimeoutError(self.request_id) from None
            if isinstance(part, StreamEnd):
                self.finished = True
                if part.error is not None:
                    raise RuntimeInvocationError(part.error)
                return
            if part:
                yield part


class RuntimeInvocationError(Exception):
    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(f"{document.get('errorType')}: {document.get('errorMessage')}")
        self.document = document


class RuntimeApi:
    """The APIs of one execution environment on ``127.0.0.1:<port>`` (``address``)."""

    def __init__(self, *, on_log: Any = None) -> None:
        self._events: queue.Queue[Invocation | None] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._closed = threading.Event()
        self.init_done = threading.Event()  # the runtime asked for its first event
        self.init_error: dict[str, Any] | None = None
        self.restored = threading.Event()  # the runtime called restore/next (SnapStart)
        self.extensions: list[str] = []
        self._log = on_log or (lambda _line: None)
        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), _Handler, self, log=self._log)
        self._httpd.start(f"runtime-api:{self._httpd.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._httpd.port}"

    def submit(
        self, event: dict[str, Any], request_id: str, deadline_ms: int, invoked_function_arn: str
    ) -> Invocation:
        invocation = Invocation(request_id, event, deadline_ms, invoked_function_arn)
        self._invocations[request_id] = invocation
        self._events.put(invocation)
        return invocation

    def close(self) -> None:
        self._closed.set()
        self._events.put(None)
        for invocation in self._invocations.values():
            invocation.parts.put(StreamEnd({"errorType": "Runtime.Closed", "errorMessage": ""}))
        self._httpd.stop()

    # -- called by the handler threads ----------------------------------------------------------
    def next_invocation(self) -> Invocation | None:
        self.init_done.set()
        while not self._closed.is_set():
            try:
                invocation = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            return invocation
        return None

    def fail_init(self, document: dict[str, Any]) -> None:
        """The init failed: Lambda fails the invocations waiting for it with its error."""
        self.init_error = document
        self.init_done.set()
        for invocation in list(self._invocations.values()):
            invocation.answered_at = time.perf_counter()
            invocation.parts.put(StreamEnd(document))

    def invocation(self, request_id: str) -> Invocation | None:
        return self._invocations.get(request_id)

    def finish(self, invocation: Invocation) -> None:
        self._invocations.pop(invocation.request_id, None)

    def wait_closed(self) -> None:
        self._closed.wait()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def api(self) -> RuntimeApi:
        return self.server.app  # type: ignore[no-any-return]

    def do_GET(self) -> None:
        if self.path == f"{RUNTIME}/invocation/next":
            invocation = self.api.next_invocation()
            if invocation is None:
                self.close_connection = True
                return  # the environment ends: the runtime's poll just stops
            trace_id = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"
            self._reply(
                200,
                json.dumps(invocation.event).encode(),
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_function_arn,
                    "Lambda-Runtime-Trace-Id": trace_id,
                },
            )
        elif self.path == f"{RUNTIME}/restore/next":
            self.api.restored.set()
            self._reply(200, b"")
        elif self.path == f"{EXTENSION}/event/next":
            self.api.wait_closed()  # registered for no event: nothing comes until the end
            self.close_connection = True
        else:
            self._reply(404, b'{"errorType":"InvalidRequest"}')

    def do_POST(self) -> None:
        arrived = time.perf_counter()
        path = self.path
        if path == f"{EXTENSION}/register":
            self._read_body()
            self.api.extensions.append(self.headers.get("Lambda-Extension-Name", ""))
            self._reply(
                200,
                b'{"functionName":"","functionVersion":"","handler":""}',
                {"Lambda-Extension-Identifier": str(uuid.uuid4())},
            )
        elif path == f"{RUNTIME}/init/error":
            self.api.fail_init(_error_document(self._read_body(), self.headers))
            self._reply(202, b'{"status":"OK"}')
        elif path.startswith(f"{RUNTIME}/invocation/"):
            request_id, _, kind = path.removeprefix(f"{RUNTIME}/invocation/").partition("/")
            invocation = self.api.invocation(request_id)
            if invocation is None or kind not in ("response", "error"):
                self._read_body()
                self._reply(400, b'{"errorType":"InvalidRequestID"}')
                return
            invocation.answered_at = arrived
            if kind == "error":
                document = _error_document(self._read_body(), self.headers)
                invocation.parts.put(StreamEnd(document))
            elif self.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming":
                self._relay_stream(invocation)
            else:
                invocation.content_type = self.headers.get("Content-Type", "application/json")
                invocation.parts.put(self._read_body())
                invocation.parts.put(StreamEnd())
            self.api.finish(invocation)
            self._reply(202, b'{"status":"OK"}')
        else:
            self._read_body()
            self._reply(404, b'{"errorType":"InvalidRequest"}')

    def _relay_stream(self, invocation: Invocation) -> None:
        invocation.streamed = True
        invocation.content_type = self.headers.get("Content-Type", STREAMING_CONTENT_TYPE)
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            invocation.parts.put(self._read_body())
            invocation.parts.put(StreamEnd())
            return
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:  # the runtime went away mid-stream
                invocation.parts.put(StreamEnd(_truncated(invocation.request_id)))
                return
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            invocation.parts.put(self.rfile.read(size))
            self.rfile.readline(1024)
        trailers = {}
        while (line := self.rfile.readline(8192).strip()) != b"":
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
        error_type = trailers.get("lambda-runtime-function-error-type")
        if error_type:
            raw = trailers.get("lambda-runtime-function-error-body", "")
            try:
                document = json.loads(base64.b64decode(raw))
            except ValueError:
                document = {"errorMessage": raw}
            document.setdefault("errorType", error_type)
            invocation.parts.put(StreamEnd(document))
        else:
            invocation.parts.put(StreamEnd())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while (size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline(1024)
            while self.rfile.readline(8192).strip():
                pass
            return bytes(data)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _error_document(body: bytes, headers: Any) -> dict[str, Any]:
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {"errorMessage": body.decode("utf-8", errors="replace")}
    if not isinstance(document, dict):
        document = {"errorMessage": str(document)}
    document.setdefault("errorType", headers.get("Lambda-Runtime-Function-Error-Type", "Unknown"))
    document.setdefault("errorMessage", "")
    return document


def _truncated(request_id: str) -> dict[str, Any]:
    return {
        "errorType": "Runtime.TruncatedResponse",
        "errorMessage": f"{request_id}: the runtime closed the response stream before its end",
    }
