"""An HTTP server that answers like the SageMaker runtime in front of a TGI container.

It speaks the wire protocol of ``sagemaker-runtime``'s ``InvokeEndpoint`` (REST-JSON:
``POST /endpoints/{EndpointName}/invocations``) and ``InvokeEndpointWithResponseStream``
(``POST /endpoints/{EndpointName}/invocations-response-stream``), so boto3 pointed at it with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` serialises requests and parses answers and errors
exactly as it does against AWS:

* 200: the container's body and ``Content-Type``, plus ``x-Amzn-Invoked-Production-Variant``;
* a container error (TGI's 4xx/5xx): HTTP 424 ``ModelError`` whose body carries ``Message``,
  ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``, which botocore lifts into
  ``ClientError.response``;
* platform errors (unknown endpoint, ``SageMakerError`` raised by a backend): their code in
  ``x-amzn-ErrorType`` and ``{"message": ...}``, as SageMaker's front end sends them;
* the response stream: 200 ``application/vnd.amazon.eventstream`` (the container's content
  type in ``X-Amzn-SageMaker-Content-Type``), a chunked body of ``PayloadPart`` events
  carrying the container's bytes as they come (a Messages API request with ``"stream": true``
  gets the engine's Server-Sent Events; any other answer comes whole), and, if the stream
  breaks after it started, a ``ModelStreamError`` event (``eventstream``). Errors before the
  stream starts are the same JSON errors as ``InvokeEndpoint``'s. SageMaker's parts may fall
  anywhere: ``payload_split_at`` cuts every event into several PayloadParts (mid-line,
  mid-JSON, even mid-character), ``payload_events_per_part`` puts several events in one.

Requests for one endpoint are served one at a time (a lock around the backend): TGI batches
concurrent requests, a CPU backend gains nothing from that. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tools.http_server import LoopbackHTTPServer, LoopbackService
from tools.model_server import eventstream, protocol, tgi_chat, vllm_protocol
from tools.model_server.backend import (
    Backend,
    ModelStreamFailure,
    SageMakerError,
)
from tools.model_server.protocol import ContainerError, GenerateRequest, Limits

DEFAULT_ACCOUNT_ID = "123456789012"
# `python -m tools.model_server` prints it, then its URL, once it serves; starters wait for it.
READY_PREFIX = "sagemaker_tgi listening on "
ENGINES = ("tgi", "vllm")  # the module's serving_engine values
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's documented request payload limit
_INVOCATIONS = re.compile(
    r"^/endpoints/(?P<name>[^/]+)/(?P<route>invocations(?:-response-stream)?)$"
)


EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


class Response:
    """Status, headers and body of one HTTP answer; ``stream``: a streamed body instead."""

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str],
        stream: PayloadStream | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.stream = stream

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    """The container's 200: a whole body, or SSE events still being generated.

    ``on_close``: the iterators to close (stopping the generation) and the callables to call
    when the answer is done with, in order.
    """

    content_type: str
    body: bytes = b""
    events: Iterator[bytes] | None = None
    on_close: list[Any] = field(default_factory=list)

    def close(self) -> None:
        closers, self.on_close = self.on_close, []
        with contextlib.ExitStack() as stack:  # each one runs, whatever the others raise
            for item in reversed(closers):
                stack.callback(_close, item)


def _close(item: Any) -> None:
    close = getattr(item, "close", None)
    if close is not None:
        close()
    elif callable(item):
        item()


class PayloadStream:
    """The event stream frames of one streamed answer, each written as soon as it exists.

    The container's bytes become ``PayloadPart`` events: ``events_per_part`` SSE events
    together (the last part takes what is left), cut at the byte offsets ``split_at``. A
    ``ModelStreamFailure`` or any other error after the start ends the stream with one
    ``ModelStreamError`` event, after the parts of the events before it. ``close()`` (always
    called, by the handler) stops the generation if the client went away and frees the
    backend.
    """

    def __init__(
        self,
        events: Iterator[bytes],
        *,
        split_at: tuple[int, ...],
        events_per_part: int = 1,
        on_close: Callable[[], None],
        log: Callable[[str], None],
    ) -> None:
        self._events = events
        self._split_at = split_at
        self._events_per_part = events_per_part
        self._on_close: Callable[[], None] | None = on_close
        self._log = log
        self.parts = 0
        self.failure: str | None = None

    def frames(self) -> Iterator[bytes]:
        pending: list[bytes] = []
        failure: bytes | None = None
        try:
            for event in self._events:
                pending.append(event)
                if len(pending) == self._events_per_part:
                    yield from self._parts(pending)
                    pending = []
        except ModelStreamFailure as error:
            self.failure = f"{error.error_code}: {error.message}"
            failure = eventstream.model_stream_error(error.message, error.error_code)
        except Exception as error:  # the container broke mid-stream
            self._log(f"generation failed mid-stream: {traceback.format_exc().rstrip()}")
            self.failure = f"{eventstream.STREAM_BROKEN}: {error}"
            failure = eventstream.model_stream_error(
                f"The model container's response stream broke: {error}", eventstream.STREAM_BROKEN
            )
        yield from self._parts(pending)
        if failure is not None:
            yield failure

    def _parts(self, events: list[bytes]) -> Iterator[bytes]:
        if events:
            for part in _cut(b"".join(events), self._split_at):
                self.parts += 1
                yield eventstream.payload_part(part)

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def _cut(data: bytes, split_at: tuple[int, ...]) -> Iterator[bytes]:
    start = 0
    for offset in sorted(set(split_at)):
        if start < offset < len(data):
            yield data[start:offset]
            start = offset
    yield data[start:]


class SageMakerTGIServer(LoopbackService):
    """A local SageMaker runtime serving one endpoint with a TGI-compatible container.

    ``on_invocation(endpoint_name, body)`` is called for every invocation whose body is valid
    JSON, before validation, with the parsed body (tests assert the exact requests; ``make
    local`` logs them). ``log`` receives one line per request.
    """

    def __init__(
        self,
        backend: Backend,
        endpoint_name: str,
        *,
        max_input_tokens: int,
        max_total_tokens: int,
        host: str = "127.0.0.1",
        port: int = 0,
        on_invocation: Callable[[str, dict], None] | None = None,
        max_stop_sequences: int = protocol.DEFAULT_MAX_STOP_SEQUENCES,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        variant_name: str = "AllTraffic",
        log: Callable[[str], None] | None = None,
        engine: str = "tgi",
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name must not be empty")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        # Which container the endpoint runs: its request handling, answers and errors.
        self.engine = engine
        self.backend = backend
        self.endpoint_name = endpoint_name
        self.limits = Limits(max_input_tokens, max_total_tokens, max_stop_sequences)
        self.on_invocation = on_invocation
        self.region = region
        self.account_id = account_id
        self.variant_name = variant_name
        self.log = log
        # How the response stream cuts the container's bytes into PayloadParts: that many SSE
        # events in one part, cut at these byte offsets (see PayloadStream).
        self.payload_split_at: tuple[int, ...] = ()
        self.payload_events_per_part = 1
        self._backend_lock = threading.Lock()
        # Requests run torch: stop() waits for them, or the interpreter's exit would abort.
        super().__init__(host, port, handler=_Handler, log=self._log_line, wait_for_requests=True)

    # -- the runtime ------------------------------------------------------------------------
    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str | None,
        *,
        response_stream: bool = False,
    ) -> Response:
        """Answer one InvokeEndpoint (or, ``response_stream``, InvokeEndpointWithResponseStream)
        call: the HTTP layer's only entry point."""
        request_id = str(uuid.uuid4())
        if endpoint_name != self.endpoint_name:
            return self._platform_error(
                request_id,
                "ValidationError",
                400,
                f"Endpoint {endpoint_name} of account {self.account_id} not found.",
            )
        try:
            self._report(endpoint_name, body)
            answer = self._answer(body, content_type, response_stream=response_stream)
        except ContainerError as error:
            return self._model_error(request_id, error)
        except SageMakerError as error:
            return self._platform_error(request_id, error.code, error.status, error.message)
        except Exception as error:  # any backend failure is the container's 424
            self._log_line(f"generation failed: {traceback.format_exc().rstrip()}")
            if self.engine == "vllm":
                failure = vllm_protocol.error(500, str(error), "InternalServerError")
            else:
                failure = ContainerError.tgi(
                    424, f"Request failed during generation: {error}", "generation"
                )
            return self._model_error(request_id, failure)
        headers = {
            "x-Amzn-Invoked-Production-Variant": self.variant_name,
            "x-amzn-RequestId": request_id,
        }
        if not response_stream:
            return Response(200, answer.body, {"Content-Type": answer.content_type, **headers})
        if answer.events is None:  # a whole answer: SageMaker streams it as it is
            answer.events = iter([answer.body])
        stream = PayloadStream(
            answer.events,
            split_at=self.payload_split_at,
            events_per_part=self.payload_events_per_part,
            on_close=answer.close,
            log=self._log_line,
        )
        headers = {
            "Content-Type": EVENT_STREAM_CONTENT_TYPE,
            "X-Amzn-SageMaker-Content-Type": answer.content_type,
            **headers,
        }
        return Response(200, b"", headers, stream)

    def _answer(self, body: bytes, content_type: str | None, *, response_stream: bool) -> _Answer:
        """The container's answer. A streamed one (SSE events asked for on the response stream
        route) keeps the backend, which serves one request at a time, until it is closed."""
        request = None if self.engine == "vllm" else protocol.parse_body(body, content_type)
        self._backend_lock.acquire()
        try:
            if request is None:
                answer = self._vllm(body)
            elif isinstance(request, GenerateRequest):
                document = protocol.handle(request, self.backend, self.limits)
                answer = _Answer("application/json", protocol.compact_json(document))
            else:
                answer = self._tgi_chat(tgi_chat.prepare(request, self.backend, self.limits))
            if answer.events is not None and not response_stream:
                # InvokeEndpoint waits for the whole stream and returns it as one body.
                with contextlib.closing(answer):
                    answer = _Answer(answer.content_type, b"".join(answer.events))
        except BaseException:
            self._backend_lock.release()
            raise
        if answer.events is None:
            self._backend_lock.release()
        else:
            answer.on_close.append(self._backend_lock.release)
        return answer

    def _tgi_chat(self, chat: tgi_chat.PreparedChat) -> _Answer:
        if not chat.request.stream:
            document = tgi_chat.answer(chat, self.backend)
            return _Answer("application/json", protocol.compact_json(document))
        pieces = self.backend.generate_stream(chat.prompt, chat.valid.params)
        events = tgi_chat.stream(chat, pieces, self.backend.model_id)
        return _Answer(tgi_chat.CONTENT_TYPE_STREAM, events=events, on_close=[pieces, events])

    def _vllm(self, body: bytes) -> _Answer:
        chat = vllm_protocol.prepare(body, self.backend, self.limits.max_total_tokens)
        if not chat.stream:
            document = vllm_protocol.answer(chat, self.backend)
            return _Answer("application/json", protocol.compact_json(document))
        pieces = self.backend.generate_stream(chat.prompt, chat.params)
        events = vllm_protocol.stream(chat, pieces, self.backend.model_id)
        return _Answer(vllm_protocol.CONTENT_TYPE_STREAM, events=events, on_close=[pieces, events])

    def _report(self, endpoint_name: str, body: bytes) -> None:
        if self.on_invocation is None:
            return
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return  # not JSON: nothing to report; the container answers 400
        self.on_invocation(endpoint_name, document)

    def _platform_error(self, request_id: str, code: str, status: int, message: str) -> Response:
        return Response(
            status,
            protocol.compact_json({"message": message}),
            {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": code,
                "x-amzn-RequestId": request_id,
            },
        )

    def _model_error(self, request_id: str, error: ContainerError) -> Response:
        original = error.body.decode("utf-8", errors="replace")
        kind = "client" if error.status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{self.endpoint_name}"
        body = {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{log_group}",
            "Message": (
                f'Received {kind} error ({error.status}) from primary with message "{original}". '
                f"See https://{self.region}.console.aws.amazon.com/cloudwatch/home?region="
                f"{self.region}#logEventViewer:group={log_group} in account {self.account_id} "
                "for more information."
            ),
            "OriginalMessage": original,
            "OriginalStatusCode": error.status,
        }
        return Response(
            424,
            protocol.compact_json(body),
            {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": "ModelError",
                "x-amzn-RequestId": request_id,
            },
        )

    def _log_line(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server_version = "sagemaker-tgi-local"
    timeout = 300  # seconds an idle keep-alive connection is kept
    server: LoopbackHTTPServer

    def do_POST(self) -> None:
        started = time.monotonic()
        app = self.server.app
        path = urlsplit(self.path).path
        match = _INVOCATIONS.match(path)
        try:
            body = self._read_body()
        except _BadRequest as error:
            self._send(app._platform_error(str(uuid.uuid4()), "ValidationError", 400, str(error)))
            self.close_connection = True
            return
        if match is None:
            response = app._platform_error(
                str(uuid.uuid4()),
                "UnknownOperationException",
                404,
                f"No SageMaker runtime operation at POST {path}",
            )
        else:
            response = app.invoke(
                unquote(match["name"]),
                body,
                self.headers.get("Content-Type"),
                response_stream=match["route"] == "invocations-response-stream",
            )
        self._send(response)
        elapsed_ms = (time.monotonic() - started) * 1000
        app._log_line(f"POST {path} {response.status} {elapsed_ms:.0f} ms{_summary(response)}")

    def do_GET(self) -> None:
        # The container contract's health check, handy for readiness probes.
        if urlsplit(self.path).path == "/ping":
            self._send(Response(200, b"", {"Content-Type": "text/plain"}))
        else:
            self._send(
                self.server.app._platform_error(
                    str(uuid.uuid4()), "UnknownOperationException", 404, f"No route GET {self.path}"
                )
            )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length", "0")
        try:
            length = int(raw_length)
        except ValueError:
            raise _BadRequest(f"Invalid Content-Length: {raw_length!r}") from None
        if length < 0:
            raise _BadRequest(f"Invalid Content-Length: {raw_length!r}")
        if length > MAX_PAYLOAD_BYTES:
            remaining = length  # read it anyway, so the client sees the answer
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                remaining -= len(chunk)
            raise _BadRequest(
                f"Request payload of {length} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit"
            )
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).strip()
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise _BadRequest("Malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_PAYLOAD_BYTES:
                raise _BadRequest(f"Request payload exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is not None:
            self._send_stream(response.stream)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _send_stream(self, stream: PayloadStream) -> None:
        """Each frame as one HTTP chunk, written (unbuffered) the moment it exists."""
        try:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for frame in stream.frames():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            stream.failure = "the client closed the connection"
            self.close_connection = True
        finally:
            stream.close()  # stops a generation the client left, frees the backend

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by do_POST instead


class _BadRequest(Exception):
    pass


def _summary(response: Response) -> str:
    """A short tail for the request log line: tokens and finish reason, or the error."""
    if response.stream is not None:
        failure = f", then {response.stream.failure}" if response.stream.failure else ""
        return f" response stream: {response.stream.parts} PayloadParts{failure}"
    try:
        document = response.json()
    except ValueError:
        return ""
    if response.status == 200 and isinstance(document, dict) and "usage" in document:
        usage, choice = document["usage"], document["choices"][0]
        return (
            f" chat: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} generated "
            f"tokens, finish_reason={choice['finish_reason']}"
        )
    if response.status == 200 and isinstance(document, list):
        return f" generate: {len(document[0].get('generated_text', ''))} characters"
    if isinstance(document, dict):
        code = response.headers.get("x-amzn-ErrorType", "")
        detail = document.get("OriginalMessage") or document.get("message", "")
        return f" {code}: {detail}"
    return ""
