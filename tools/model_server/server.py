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
* the 60 s container timeout (``InvocationTimeout`` raised by a backend): that same 424 with
  ``OriginalStatusCode`` 0 and SageMaker's sentence "Your invocation timed out while waiting
  for a response from container primary. ...";
* platform errors (unknown endpoint, ``SageMakerError`` raised by a backend, such as
  ``backend.access_denied(...)``): their code in ``x-amzn-ErrorType`` and
  ``{"message": ...}``, as SageMaker's front end sends them;
* the response stream: 200 ``application/vnd.amazon.eventstream`` (the container's content
  type in ``X-Amzn-SageMaker-Content-Type``), a chunked body of ``PayloadPart`` events
  carrying the container's bytes as they come (a Messages API request with ``"stream": true``
  gets the engine's Server-Sent Events; any other answer comes whole), and, if the stream
  breaks after it started, a ``ModelStreamError`` event (``eventstream``). Errors before the
  stream starts are the same JSON errors as ``InvokeEndpoint``'s. SageMaker's parts may fall
  anywhere: ``payload_split_at`` cuts every event into several PayloadParts (mid-line,
  mid-JSON, even mid-character), ``payload_events_per_part`` puts several events in one.

Requests for one endpoint generate one at a time (a lock around the backend): TGI batches
concurrent requests, a CPU backend gains nothing from that. Under load it behaves as TGI's
router does:

* at most ``max_concurrent_requests`` requests are admitted at once (TGI's
  ``--max-concurrent-requests`` semaphore, here over those generating and those waiting for
  the model); past that TGI answers "Model is overloaded": HTTP 429 for a buffered request,
  the in-stream error event for a streamed chat (``tgi_chat``). vLLM has no such bound;
* a request whose client has disconnected stops: while it waits for the model, and between
  two tokens of its generation, buffered or streamed (the backend's stream is closed, which
  stops ``model.generate``), so it never delays the next one;
* each request logs one line when it starts, one when it ends, and one if it is cancelled;
  none carries the prompt.

Standard library only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import select
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tools.http_server import LoopbackHTTPServer, LoopbackService
from tools.model_server import eventstream, protocol, tgi_chat, vllm_protocol
from tools.model_server.backend import (
    INVOCATION_TIMEOUT_MESSAGE,
    Backend,
    GenerateParams,
    Generation,
    InvocationTimeout,
    ModelStreamFailure,
    SageMakerError,
)
from tools.model_server.protocol import ContainerError, GenerateRequest, Limits

DEFAULT_ACCOUNT_ID = "123456789012"
# TGI's launcher defaults to 128 concurrent requests, sized for a GPU's batches; a CPU serving
# one generation at a time is better off refusing early than queueing work nobody waits for.
DEFAULT_MAX_CONCURRENT_REQUESTS = 8
# How often a request waiting for the model looks whether its client is still there.
_QUEUE_POLL_SECONDS = 0.1
# `python -m tools.model_server` prints it, then its URL, once it serves; starters wait for it.
READY_PREFIX = "sagemaker_tgi listening on "
ENGINES = ("tgi", "vllm")  # the module's serving_engine values
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's documented request payload limit
_INVOCATIONS = re.compile(
    r"^/endpoints/(?P<name>[^/]+)/(?P<route>invocations(?:-response-stream)?)$"
)


EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


@dataclass
class Response:
    """Status, headers and body of one HTTP answer; ``stream``: a streamed body instead."""

    status: int
    body: bytes
    headers: dict[str, str]
    stream: PayloadStream | None = None

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
    refusal: str | None = None  # the engine's in-stream error instead of an answer (the log's)

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
        watch: _Watch | None = None,
    ) -> None:
        self._events = events
        self.watch = watch
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
        except ClientGone:
            raise
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


class ClientGone(Exception):
    """The client closed its connection: the request's work stops (raised between tokens).

    ``tokens``: how many pieces of text had been generated for it.
    """

    def __init__(self, tokens: int = 0) -> None:
        super().__init__(tokens)
        self.tokens = tokens


class _Watch:
    """One request's view of its client: ``check()`` raises ``ClientGone`` once it has gone;
    ``tokens`` counts the pieces of text generated for it so far."""

    def __init__(self, client_gone: Callable[[], bool]) -> None:
        self._client_gone = client_gone
        self.tokens = 0

    def check(self) -> None:
        if self._client_gone():
            raise ClientGone(self.tokens)


class _Permit:
    """A request's place among the admitted ones (TGI's semaphore permit), released once."""

    def __init__(self, slots: threading.BoundedSemaphore | None) -> None:
        self._slots = slots
        self._held = False

    def take(self) -> None:
        """TGI's ``try_acquire_owned``: never waits; raises its overload error instead."""
        if self._slots is None:
            return
        if not self._slots.acquire(blocking=False):
            raise protocol.overloaded()
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()  # type: ignore[union-attr]


def client_disconnected(connection: socket.socket) -> bool:
    """Whether the peer has closed ``connection``: readable with nothing to read (EOF), or
    broken. A client waiting for its answer sends nothing, so this never consumes a byte."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


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
        on_invocation: Callable[[str, dict[str, Any]], None] | None = None,
        max_stop_sequences: int = protocol.DEFAULT_MAX_STOP_SEQUENCES,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        variant_name: str = "AllTraffic",
        log: Callable[[str], None] | None = None,
        engine: str = "tgi",
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name must not be empty")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if max_concurrent_requests < 0:
            raise ValueError("max_concurrent_requests cannot be negative")
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
        # TGI's --max-concurrent-requests (its semaphore: see _Permit); vLLM has none.
        self.max_concurrent_requests = max_concurrent_requests
        self._request_numbers = itertools.count(1)
        self.in_flight = 0  # requests started and not yet ended, for the log
        self._in_flight_lock = threading.Lock()
        # Requests run torch: stop() waits for them, or the interpreter's exit would abort.
        super().__init__(host, port, handler=_Handler, log=self._log_line, wait_for_requests=True)

    # -- the runtime ------------------------------------------------------------------------
    @property
    def max_concurrent_requests(self) -> int:
        return self._max_concurrent_requests

    @max_concurrent_requests.setter
    def max_concurrent_requests(self, value: int) -> None:
        """Changed between requests, never while any is admitted. 0 refuses every request,
        as TGI's semaphore of 0 permits would: an overloaded container for tests."""
        self._max_concurrent_requests = value
        self._slots = threading.BoundedSemaphore(value)

    # -- the runtime ------------------------------------------------------------------------
    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str | None,
        *,
        response_stream: bool = False,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> Response:
        """Answer one InvokeEndpoint (or, ``response_stream``, InvokeEndpointWithResponseStream)
        call: the HTTP layer's only entry point. ``client_gone`` says whether the caller has
        disconnected; the work stops when it has (``ClientGone``, raised here for a buffered
        answer, by the stream's frames for a streamed one)."""
        request_id = str(uuid.uuid4())
        if endpoint_name != self.endpoint_name:
            return self._platform_error(
                request_id,
                "ValidationError",
                400,
                f"Endpoint {endpoint_name} of account {self.account_id} not found.",
            )
        watch = _Watch(client_gone)
        try:
            self._report(endpoint_name, body)
            answer = self._answer(body, content_type, watch, response_stream=response_stream)
        except ClientGone:
            raise
        except (ContainerError, InvocationTimeout) as error:
            if isinstance(error, InvocationTimeout):  # SageMaker's own answer, status 0
                error = ContainerError.plain(0, INVOCATION_TIMEOUT_MESSAGE)
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
            watch=watch,
        )
        if answer.refusal is not None:
            stream.failure = f"the engine's error event: {answer.refusal}"
        headers = {
            "Content-Type": EVENT_STREAM_CONTENT_TYPE,
            "X-Amzn-SageMaker-Content-Type": answer.content_type,
            **headers,
        }
        return Response(200, b"", headers, stream)

    def _answer(
        self, body: bytes, content_type: str | None, watch: _Watch, *, response_stream: bool
    ) -> _Answer:
        """The container's answer. A streamed one (SSE events asked for on the response stream
        route) holds its permit, and the model while it generates, until it is closed."""
        permit = _Permit(None if self.engine == "vllm" else self._slots)
        try:
            if self.engine == "vllm":
                answer = self._vllm(body, watch)
            else:
                answer = self._tgi(body, content_type, permit, watch)
            if answer.events is not None and not response_stream:
                # InvokeEndpoint waits for the whole stream and returns it as one body.
                with contextlib.closing(answer):
                    answer = _Answer(answer.content_type, b"".join(answer.events))
        except BaseException:
            permit.release()
            raise
        if answer.events is None:
            permit.release()
        else:
            answer.on_close.append(permit.release)
        return answer

    def _tgi(
        self, body: bytes, content_type: str | None, permit: _Permit, watch: _Watch
    ) -> _Answer:
        request = protocol.parse_body(body, content_type)
        if isinstance(request, GenerateRequest):
            permit.take()  # Infer::generate_stream: the permit, then the validation
            generated = protocol.handle(
                request,
                self.limits,
                self.backend.count_tokens,
                lambda prompt, params: self._generation(prompt, params, watch),
            )
            return _Answer("application/json", protocol.compact_json(generated))
        prompt = tgi_chat.template(request, self.backend)
        if not request.stream:
            permit.take()
            chat = tgi_chat.validate(request, prompt, self.limits, self.backend.count_tokens)
            generation = self._generation(prompt, chat.valid.params, watch)
            document = tgi_chat.answer(chat, generation, self.backend.model_id)
            return _Answer("application/json", protocol.compact_json(document))

        # TGI takes the permit and validates inside the 200 stream: a refusal is its error event.
        try:
            permit.take()
            chat = tgi_chat.validate(request, prompt, self.limits, self.backend.count_tokens)
        except ContainerError as refused:
            events = tgi_chat.refused(refused)
            return _Answer(tgi_chat.CONTENT_TYPE_STREAM, events=events, refusal=refused.message)
        pieces = self._pieces(prompt, chat.valid.params, watch)
        events = tgi_chat.stream(chat, pieces, self.backend.model_id)
        return _Answer(tgi_chat.CONTENT_TYPE_STREAM, events=events, on_close=[pieces, events])

    def _vllm(self, body: bytes, watch: _Watch) -> _Answer:
        chat = vllm_protocol.prepare(body, self.backend, self.limits.max_total_tokens)
        if not chat.stream:
            generation = self._generation(chat.prompt, chat.params, watch)
            document = vllm_protocol.answer(chat, generation, self.backend.model_id)
            return _Answer("application/json", protocol.compact_json(document))
        pieces = self._pieces(chat.prompt, chat.params, watch)
        events = vllm_protocol.stream(chat, pieces, self.backend.model_id)
        return _Answer(vllm_protocol.CONTENT_TYPE_STREAM, events=events, on_close=[pieces, events])

    def _pieces(
        self, prompt: str, params: GenerateParams, watch: _Watch
    ) -> Generator[str | Generation, None, None]:
        """The backend's stream for one request. It is asked for at once, so an error that
        prevents the generation (a SageMaker error) comes before any answer starts; the model
        is taken at the first ``next`` and held until the stream ends or is closed."""
        return self._holding_model(self.backend.generate_stream(prompt, params), watch)

    def _holding_model(
        self, pieces: Iterator[str | Generation], watch: _Watch
    ) -> Generator[str | Generation, None, None]:
        """``pieces`` once the model is free. It stops as soon as the client has gone: while
        waiting for the model, and before each piece is passed on (closing ``pieces`` stops
        the generation)."""
        try:
            while not self._backend_lock.acquire(timeout=_QUEUE_POLL_SECONDS):
                watch.check()
            try:
                watch.check()
                for piece in pieces:
                    watch.check()
                    if not isinstance(piece, Generation):
                        watch.tokens += 1
                    yield piece
            finally:
                self._backend_lock.release()
        finally:
            _close(pieces)

    def _generation(self, prompt: str, params: GenerateParams, watch: _Watch) -> Generation:
        """The whole generation of a buffered answer (it stops too when the client goes)."""
        with contextlib.closing(self._pieces(prompt, params, watch)) as pieces:
            for piece in pieces:
                if isinstance(piece, Generation):
                    return piece
        raise TypeError("the backend's stream ended without its Generation")

    # -- the request log ----------------------------------------------------------------------
    def _started(self, method: str, path: str, size: int) -> int:
        with self._in_flight_lock:
            self.in_flight += 1
            in_flight = self.in_flight
        number = next(self._request_numbers)
        self._log_line(
            f"request {number} started: {method} {path} ({size} bytes; {in_flight} in flight, "
            f"at most {self.max_concurrent_requests} admitted)"
        )
        return number

    def _ended(self) -> None:
        with self._in_flight_lock:
            self.in_flight -= 1

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
        # Status 0 is SageMaker's own: the container never answered (a timeout).
        kind = "client" if 400 <= error.status < 500 else "server"
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
        number = app._started("POST", path, len(body))
        try:
            self._answer(app, path, match, body, started=started, number=number)
        finally:
            app._ended()

    def _answer(
        self,
        app: SageMakerTGIServer,
        path: str,
        match: re.Match[str] | None,
        body: bytes,
        *,
        started: float,
        number: int,
    ) -> None:
        try:
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
                    client_gone=lambda: client_disconnected(self.connection),
                )
            self._send(response)
        except ClientGone as gone:
            self.close_connection = True
            elapsed_ms = (time.monotonic() - started) * 1000
            app._log_line(
                f"request {number} cancelled: POST {path}: the client disconnected after "
                f"{elapsed_ms:.0f} ms; generation stopped after {gone.tokens} tokens"
            )
            return
        elapsed_ms = (time.monotonic() - started) * 1000
        app._log_line(
            f"POST {path} {response.status} {elapsed_ms:.0f} ms{_summary(response)} "
            f"(request {number})"
        )

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
        """Each frame as one HTTP chunk, written (unbuffered) the moment it exists. A client
        that has gone raises ``ClientGone``, after the generation has been stopped."""
        try:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for frame in stream.frames():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone(stream.watch.tokens if stream.watch else 0) from None
        finally:
            stream.close()  # stops a generation the client left, frees the model

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
