"""An HTTP server that answers like the SageMaker runtime in front of a TGI container.

It speaks the wire protocol of ``sagemaker-runtime``'s ``InvokeEndpoint`` (REST-JSON:
``POST /endpoints/{EndpointName}/invocations``), so boto3 pointed at it with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` serialises requests and parses errors exactly as it
does against AWS:

* 200: the container's body and ``Content-Type``, plus ``x-Amzn-Invoked-Production-Variant``;
* a container error (TGI's 4xx/5xx): HTTP 424 ``ModelError`` whose body carries ``Message``,
  ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``, which botocore lifts into
  ``ClientError.response``;
* the 60 s container timeout (``InvocationTimeout`` raised by a backend): that same 424 with
  ``OriginalStatusCode`` 0 and SageMaker's sentence "Your invocation timed out while waiting
  for a response from container primary. ...";
* platform errors (unknown endpoint, ``SageMakerError`` raised by a backend, such as
  ``backend.access_denied(...)``): their code in ``x-amzn-ErrorType`` and
  ``{"message": ...}``, as SageMaker's front end sends them.

Requests for one endpoint are served one at a time (a lock around the backend): TGI batches
concurrent requests, a CPU backend gains nothing from that. Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tools.http_server import LoopbackHTTPServer, LoopbackService
from tools.model_server import protocol, vllm_protocol
from tools.model_server.backend import (
    INVOCATION_TIMEOUT_MESSAGE,
    Backend,
    InvocationTimeout,
    SageMakerError,
)
from tools.model_server.protocol import ContainerError, Limits

DEFAULT_ACCOUNT_ID = "123456789012"
# `python -m tools.model_server` prints it, then its URL, once it serves; starters wait for it.
READY_PREFIX = "sagemaker_tgi listening on "
ENGINES = ("tgi", "vllm")  # the module's serving_engine values
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's documented request payload limit
_INVOCATIONS = re.compile(
    r"^/endpoints/(?P<name>[^/]+)/(?P<route>invocations(?:-response-stream)?)$"
)


class Response:
    """Status, headers and body of one HTTP answer."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)


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
        self._backend_lock = threading.Lock()
        # Requests run torch: stop() waits for them, or the interpreter's exit would abort.
        super().__init__(host, port, handler=_Handler, log=self._log_line, wait_for_requests=True)

    # -- the runtime ------------------------------------------------------------------------
    def invoke(self, endpoint_name: str, body: bytes, content_type: str | None) -> Response:
        """Answer one InvokeEndpoint call (the HTTP layer's only entry point)."""
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
            answer = self._answer(body, content_type)
        except ContainerError as error:
            return self._model_error(request_id, error)
        except SageMakerError as error:
            return self._platform_error(request_id, error.code, error.status, error.message)
        except InvocationTimeout:
            return self._model_error(
                request_id, ContainerError.plain(0, INVOCATION_TIMEOUT_MESSAGE)
            )
        except Exception as error:  # any backend failure is the container's 424
            self._log_line(f"generation failed: {traceback.format_exc().rstrip()}")
            if self.engine == "vllm":
                failure = vllm_protocol.error(500, str(error), "InternalServerError")
            else:
                failure = ContainerError.tgi(
                    424, f"Request failed during generation: {error}", "generation"
                )
            return self._model_error(request_id, failure)
        return Response(
            200,
            protocol.compact_json(answer),
            {
                "Content-Type": "application/json",
                "x-Amzn-Invoked-Production-Variant": self.variant_name,
                "x-amzn-RequestId": request_id,
            },
        )

    def _answer(self, body: bytes, content_type: str | None) -> Any:
        if self.engine == "vllm":
            with self._backend_lock:
                return vllm_protocol.handle(body, self.backend, self.limits.max_total_tokens)
        request = protocol.parse_body(body, content_type)
        with self._backend_lock:
            return protocol.handle(request, self.backend, self.limits)

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
        if match is None:
            response = app._platform_error(
                str(uuid.uuid4()),
                "UnknownOperationException",
                404,
                f"No SageMaker runtime operation at POST {path}",
            )
        elif match["route"] != "invocations":
            response = app._platform_error(
                str(uuid.uuid4()),
                "ValidationError",
                400,
                "InvokeEndpointWithResponseStream is not implemented by this local SageMaker "
                "runtime (sagemaker_tgi); call InvokeEndpoint",
            )
        else:
            response = app.invoke(unquote(match["name"]), body, self.headers.get("Content-Type"))
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
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by do_POST instead


class _BadRequest(Exception):
    pass


def _summary(response: Response) -> str:
    """A short tail for the request log line: tokens and finish reason, or the error."""
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
