"""Serve a packaged Lambda function behind a local URL that behaves like its Function URL.

The function runs in the Lambda sandbox (``tools.lambda_sandbox``: its deployed artifacts,
warm workers, payload format 2.0 events, Lambda's response mapping); this module is the HTTP
side:

* a handler error, timeout or crash is a 502 ``Internal Server Error`` (the error document goes
  to the log, as to CloudWatch), as is a result a Function URL cannot map;
* ``AWS_IAM`` URLs answer 403 ``{"Message":"Forbidden"}`` to unsigned requests. Signatures
  are not verified locally (no IAM here): any SigV4-signed request is let through, and its
  event's ``requestContext.authorizer.iam`` names the signing access key id as the caller;
* payloads over 6 MB answer 413, as Lambda's invocation limit;
* a ``RESPONSE_STREAM`` URL of a function behind the (local) Lambda Web Adapter relays its
  response stream as it comes (``relay_stream``): status, headers and cookies from the
  stream's JSON prelude, then the body in HTTP chunks, each written as soon as the function
  wrote it; a failure after the first byte ends the connection without the last chunk, so the
  client sees a truncated transfer, as on AWS; a client that goes away mid-stream does not
  stop the function, which runs to its end with nobody reading, as on AWS;
* with a ``cors`` config (``tools.function_urls.cors``) the URL answers browsers' preflights
  itself and sets the access-control headers of every response, as Lambda does.

One line per request goes to the log: function, method, path, status, milliseconds.
The command line (``python -m tools.function_urls``) serves one function alone.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, urlsplit

from tools.function_urls.cors import Cors
from tools.http_server import LoopbackHTTPServer, LoopbackService
from tools.lambda_sandbox.events import (
    BadResponseError,
    HttpRequest,
    HttpResponse,
    build_event,
    local_caller,
    map_response,
)
from tools.lambda_sandbox.functions import FunctionSpec, InvocationError, LocalFunction, Log
from tools.lambda_sandbox.runtime_api import STREAMING_CONTENT_TYPE, RuntimeInvocationError

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
PRELUDE_SEPARATOR = b"\0" * 8  # ends the JSON prelude of a streamed HTTP response

__all__ = ["FunctionUrlServer", "InvocationError", "write_line"]


class FunctionUrlServer(LoopbackService):
    """A Function URL for ``spec`` on ``http://host:port/`` (``port=0``: any free port).

    ``function_options`` go to the function's ``LocalFunction`` (python, base_env, work_dir,
    max_concurrency).
    """

    url_suffix = "/"

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Log = print,
        cors: Cors | None = None,
        **function_options: Any,
    ) -> None:
        super().__init__(host, port, handler=_Handler, log=log)
        self.spec = spec
        self.cors = cors
        self.log = log
        self.function = LocalFunction(spec, log=log, **function_options)
        self.url_id = spec.url_id or uuid.uuid5(uuid.NAMESPACE_URL, spec.arn).hex

    def start(self, *, warm: bool = False) -> Self:
        """Listen; with ``warm``, also run the init phase now so import errors show at once."""
        if warm and not self.running:
            self.function.warm()
        return super().start()

    def stop(self) -> None:
        super().stop()
        self.function.close()

    @property
    def streams(self) -> bool:
        """The URL relays a response stream: RESPONSE_STREAM, a function with a wrapper."""
        return self.spec.invoke_mode == "RESPONSE_STREAM" and self.spec.exec_wrapper is not None

    def handle(self, request: HttpRequest) -> HttpResponse:
        response = self._handle(request)
        headers = self.cors_headers(request, response.headers)
        return HttpResponse(response.status, headers, response.body)

    def preflight(self, request: HttpRequest) -> HttpResponse | None:
        """The URL's own answer to a browser's CORS preflight; None: not one (or no cors)."""
        headers = {name.lower(): value for name, value in request.headers}
        if self.cors is None or not self.cors.is_preflight(request.method, headers):
            return None
        common = [("x-amzn-RequestId", str(uuid.uuid4()))]
        return HttpResponse(200, [*common, *self.cors.preflight(headers)], b"")

    def cors_headers(
        self, request: HttpRequest, headers: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        if self.cors is None:
            return list(headers)
        origin = next((v for k, v in request.headers if k.lower() == "origin"), None)
        return self.cors.response_headers(origin, headers)

    def _handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        common = [("x-amzn-RequestId", request_id)]
        event = self._event(request, request_id)
        if event is None:
            return _forbidden(common)
        try:
            response = map_response(self.function.invoke(event, request_id))
        except InvocationError as error:
            self.log(f"[{self.spec.name}] invocation failed: {json.dumps(error.document)}")
            return _internal_server_error(common)
        except BadResponseError as error:
            self.log(f"[{self.spec.name}] invalid response for a Function URL: {error}")
            return _internal_server_error(common)
        return HttpResponse(response.status, [*common, *response.headers], response.body)

    def relay_stream(self, request: HttpRequest, out: ResponseWriter) -> int:
        """Answer through ``out`` as the function streams; returns the status sent."""
        request_id = str(uuid.uuid4())
        common = [("x-amzn-RequestId", request_id)]
        event = self._event(request, request_id)
        if event is None:
            forbidden = _forbidden(common)
            headers = self.cors_headers(request, forbidden.headers)
            return out.whole(HttpResponse(forbidden.status, headers, forbidden.body))
        started = False
        try:
            with self.function.stream(event, request_id) as invocation:
                chunks = invocation.chunks()
                # The first chunk comes with the response's content type.
                first = next(chunks, b"")
                if invocation_is_http(invocation.content_type):
                    status, head, first = read_prelude(first, chunks)
                else:  # a raw stream: Lambda answers 200 with the stream's content type
                    status, head = 200, [("Content-Type", invocation.content_type)]
                client = _Client(out, self.log, f"[{self.spec.name}] {request_id}")
                headers = self.cors_headers(request, [*common, *head])
                client.send(lambda: out.start(status, headers))
                started = True
                for chunk in itertools.chain([first], chunks):
                    if chunk:
                        client.send(lambda chunk=chunk: out.chunk(chunk))
                client.send(out.end)
                return status
        except (InvocationError, RuntimeInvocationError, TimeoutError, BadResponseError) as error:
            self.log(f"[{self.spec.name}] response stream failed: {_describe(error)}")
            if started:
                out.abort()  # no last chunk: the client sees the stream cut short
                return 0
            failed = _internal_server_error(common)
            headers = self.cors_headers(request, failed.headers)
            return out.whole(HttpResponse(failed.status, headers, failed.body))

    def _event(self, request: HttpRequest, request_id: str) -> dict[str, Any] | None:
        """The invocation's event; None for an unsigned request to an AWS_IAM URL (403)."""
        access_key = _signing_access_key(request.target, request.headers)
        if self.spec.auth_type == "AWS_IAM" and access_key is None:
            return None
        caller = (
            local_caller(access_key) if self.spec.auth_type == "AWS_IAM" and access_key else None
        )
        return build_event(request, request_id=request_id, url_id=self.url_id, iam=caller)


class _Client:
    """The client end of a response stream. A client that goes away stops receiving, not the
    function: Lambda reads the stream to its end ("streamed responses are not interrupted or
    stopped when the invoking client connection is broken", AWS's response-streaming guide),
    so the environment stays busy, and billed, until the function ends or times out."""

    def __init__(self, out: ResponseWriter, log: Log, label: str) -> None:
        self.out, self.log, self.label = out, log, label
        self.gone = False

    def send(self, write: Callable[[], None]) -> None:
        if self.gone:
            return
        try:
            write()
        except OSError as error:
            self.gone = True
            self.log(f"{self.label}: the client went away ({error}); the function runs on")


class ResponseWriter(Protocol):
    def whole(self, response: HttpResponse) -> int: ...
    def start(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    def chunk(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def abort(self) -> None: ...


def invocation_is_http(content_type: str) -> bool:
    """A stream that starts with an HTTP prelude (Lambda's http-integration-response)."""
    return content_type.split(";", 1)[0].strip() == STREAMING_CONTENT_TYPE


def read_prelude(first: bytes, chunks: Iterator[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, the body bytes that came with the prelude) of a streamed response."""
    buffer = first
    while PRELUDE_SEPARATOR not in buffer:
        chunk = next(chunks, None)
        if chunk is None:
            raise BadResponseError("the response stream ended before its prelude's end")
        buffer += chunk
    raw, _, rest = buffer.partition(PRELUDE_SEPARATOR)
    try:
        prelude = json.loads(raw)
    except ValueError as error:
        raise BadResponseError(f"the prelude is not JSON: {error}") from None
    status = prelude.get("statusCode", 200) if isinstance(prelude, dict) else None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponseError(f"statusCode must be an HTTP status integer, not {status!r}")
    headers: list[tuple[str, str]] = []
    for name, value in (prelude.get("headers") or {}).items():
        for one in value if isinstance(value, list) else [value]:
            headers.append((str(name), str(one)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/octet-stream"))
    headers += [("Set-Cookie", str(cookie)) for cookie in prelude.get("cookies") or []]
    return status, headers, rest


def _describe(error: Exception) -> str:
    document = getattr(error, "document", None)
    return json.dumps(document) if document else f"{type(error).__name__}: {error}"


def _forbidden(common: list[tuple[str, str]]) -> HttpResponse:
    return HttpResponse(
        403, [*common, ("Content-Type", "application/json")], b'{"Message":"Forbidden"}'
    )


def _internal_server_error(common: list[tuple[str, str]]) -> HttpResponse:
    # What a Function URL answers when the function fails; the details are in the log only.
    return HttpResponse(
        502, [*common, ("Content-Type", "application/json")], b"Internal Server Error"
    )


def _signing_access_key(target: str, headers: Sequence[tuple[str, str]]) -> str | None:
    """The access key id a SigV4-signed request names (header or presigned URL); None unsigned."""
    authorization = next((v for k, v in headers if k.lower() == "authorization"), "")
    if authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1]
        return credential.split("/", 1)[0].strip() or None
    query = dict(parse_qsl(urlsplit(target).query))
    if "X-Amz-Signature" in query:  # a presigned URL
        return query.get("X-Amz-Credential", "").split("/", 1)[0] or None
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-function-url"
    timeout = 300
    server: LoopbackHTTPServer

    def _serve(self) -> None:
        started = time.monotonic()
        app = self.server.app
        try:
            body = self._read_body()
        except _TooLargeError as error:
            response = HttpResponse(
                413,
                [("Content-Type", "application/json")],
                json.dumps({"Message": str(error)}).encode(),
            )
            self.close_connection = True
        else:
            request = HttpRequest(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            preflight = app.preflight(request)
            if preflight is not None:
                response = preflight
            elif app.streams:
                status = app.relay_stream(request, out=self)
                elapsed = (time.monotonic() - started) * 1000
                app.log(f"{app.spec.name} {self.command} {self.path} {status} {elapsed:.0f} ms")
                return
            else:
                response = app.handle(request)
        self.whole(response)
        elapsed = (time.monotonic() - started) * 1000
        app.log(f"{app.spec.name} {self.command} {self.path} {response.status} {elapsed:.0f} ms")

    def whole(self, response: HttpResponse) -> int:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if not any(name.lower() == "date" for name, _ in response.headers):
            self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        return response.status

    # -- a streamed response (ResponseWriter) -------------------------------------------------
    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        if not any(name.lower() == "date" for name, _ in headers):
            self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        if self.command != "HEAD" and data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end(self) -> None:
        if self.command != "HEAD":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def send_response(self, code: int, message: str | None = None) -> None:
        # Without the stdlib's own Server/Date headers; _serve writes Date once.
        self.send_response_only(code, message)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while (size := int(self.rfile.readline(1024).split(b";")[0] or b"0", 16)) > 0:
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    raise _TooLargeError(_too_large_message())
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            while self.rfile.readline(1024).strip():
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            _discard(self.rfile, length)  # read it anyway, so the client sees the 413
            raise _TooLargeError(_too_large_message())
        return self.rfile.read(length)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _serve writes one line per request


_WRITE_LOCK = threading.Lock()


def write_line(line: str) -> None:
    """One log line to stdout, whole: print() writes the text and the newline separately,
    so lines relayed from several threads would interleave."""
    with _WRITE_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class _TooLargeError(Exception):
    pass


def _discard(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


def _too_large_message() -> str:
    return (
        f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
    )
