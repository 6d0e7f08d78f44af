"""Serve a packaged Lambda function behind a local URL that behaves like its Function URL.

What a request meets, as on AWS:

* the function's **deployed artifacts**: its zip unpacked as /var/task and its layers' zips as
  /opt (later layers over earlier ones), run by a fresh Python interpreter of the function's
  runtime in isolated mode (``-I -S``), so nothing but the standard library and the artifacts
  is importable (no runtime-provided boto3: a package that forgets a dependency fails here);
* **warm workers**: an interpreter imports the handler once (the init phase, logged as a cold
  start) and serves invocation after invocation; a timeout, crash or init failure discards it
  and the next request starts a fresh one;
* **payload format 2.0 events** (``version``, ``routeKey`` ``$default``, ``rawPath``,
  ``rawQueryString``, lower-cased ``headers``, ``cookies``, ``queryStringParameters`` only when
  there is a query string, ``requestContext.http``, ``body`` base64-encoded unless the content
  type is text or JSON);
* the function's **handler, environment, timeout and memory size**, Lambda's reserved
  variables (``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, ...), a context object with
  ``get_remaining_time_in_millis()``;
* **Lambda's response mapping**: a dict with ``statusCode`` gives the status, headers,
  cookies and (base64) body; any other JSON result is a 200 ``application/json`` body; a
  handler error, timeout or crash is a 502 ``Internal Server Error`` (the error document goes
  to the log, as to CloudWatch);
* ``AWS_IAM`` URLs answer 403 ``{"Message":"Forbidden"}`` to unsigned requests. Signatures
  are not verified locally (no IAM here): any SigV4-signed request is let through.

One line per request goes to the log: function, method, path, status, milliseconds. The
function's own output (prints, logging) is relayed line by line, prefixed with its name.

Alone, against the real SageMaker endpoint with your AWS credentials::

    .venv/bin/python -m tools.function_urls \\
        --zip build/chat.zip --layer build/layer.zip --handler chat.handler.handler \\
        --env ENDPOINT_NAME=my-endpoint --env HISTORY_TABLE_NAME= --timeout 180 --port 9001
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import parse_qsl, urlsplit

from tools.http_server import LoopbackHTTPServer
from tools.paths import find_python

RUNTIME_SCRIPT = Path(__file__).resolve().parents[1] / "lambda_sandbox" / "runtime.py"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
_INIT_TIMEOUT_SECONDS = 10.0  # Lambda's init phase limit; a slower init counts toward the call
_HEADER = struct.Struct(">I")
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
_RESERVED_PREFIXES = ("AWS_LAMBDA_", "_HANDLER", "LAMBDA_")

Log = Callable[[str], None]


@dataclass(frozen=True)
class FunctionSpec:
    """One deployed function: its artifacts and configuration (what get_function returns)."""

    name: str
    handler: str
    code_zip: Path
    layer_zips: tuple[Path, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    runtime: str = "python3.12"
    region: str = "us-east-1"
    account_id: str = "123456789012"
    auth_type: str = "NONE"  # the Function URL's: NONE or AWS_IAM
    url_id: str | None = None  # the <url-id> of https://<url-id>.lambda-url.<region>.on.aws

    def __post_init__(self) -> None:
        if not self.runtime.startswith("python3."):
            raise ValueError(f"{self.name}: runtime {self.runtime} is not a Python runtime")
        if self.auth_type not in ("NONE", "AWS_IAM"):
            raise ValueError(f"{self.name}: auth_type must be NONE or AWS_IAM")
        if self.timeout_seconds <= 0:
            raise ValueError(f"{self.name}: timeout_seconds must be positive")
        reserved = sorted(k for k in self.environment if k.startswith(_RESERVED_PREFIXES))
        if reserved:
            raise ValueError(f"{self.name}: reserved environment variables set: {reserved}")

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")


class InvocationError(Exception):
    """An invocation ended without a result; ``document`` is Lambda's error JSON."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(f"{document.get('errorType')}: {document.get('errorMessage')}")
        self.document = document


# ---------------------------------------------------------------------------
# Execution environments
# ---------------------------------------------------------------------------
class _Worker:
    """One warm interpreter running ``lambda_runtime.py`` (a Lambda execution environment)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        python: str,
        task: Path,
        opt: Path,
        env: dict[str, str],
        log: Log,
    ) -> None:
        self.spec = spec
        self.log = log
        self.ready = False  # the init phase has finished
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        self._read_fd, self._write_fd = parent_read, parent_write
        self.process = subprocess.Popen(
            [python, "-I", "-S", "-u", str(RUNTIME_SCRIPT), str(child_read), str(child_write)],
            cwd=task,
            env={**env, "LOCAL_LAMBDA_LAYER_ROOT": str(opt)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(child_read, child_write),
            # Own session: Ctrl-C in the terminal reaches the orchestrator, which stops us.
            start_new_session=True,
        )
        os.close(child_read)
        os.close(child_write)
        self._relays = [
            threading.Thread(target=self._relay, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for relay in self._relays:
            relay.start()

    def _relay(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):
            self.log(f"[{self.spec.name}] {raw.decode('utf-8', errors='replace').rstrip()}")
        stream.close()

    def ensure_ready(self) -> None:
        """Wait for the init phase of a new worker (logged as a cold start)."""
        if self.ready:
            return
        init_ms = self._wait_init(max(_INIT_TIMEOUT_SECONDS, self.spec.timeout_seconds))
        self.ready = True
        self.log(f"[{self.spec.name}] cold start: init {init_ms:.0f} ms")

    def _wait_init(self, timeout: float) -> float:
        message = self._receive(time.monotonic() + timeout)
        if message is None:
            self.kill()
            raise InvocationError(
                {
                    "errorMessage": f"The init phase did not finish within {timeout:.0f} seconds",
                    "errorType": "Runtime.InitTimeout",
                    "stackTrace": [],
                }
            )
        if message.get("type") == "init_error":
            self.kill()
            raise InvocationError(message["error"])
        return float(message["init_ms"])

    def invoke(self, event: dict[str, Any], request_id: str, deadline: float) -> str:
        """Run the handler; returns its result as JSON text or raises InvocationError."""
        deadline_ms = int((time.time() + deadline - time.monotonic()) * 1000)
        self._send(
            {
                "request_id": request_id,
                "event": event,
                "deadline_ms": deadline_ms,
                "invoked_function_arn": self.spec.arn,
            }
        )
        message = self._receive(deadline)
        if message is None:
            self.kill()
            raise InvocationError(
                {
                    "errorMessage": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                    f"{request_id} Task timed out after {self.spec.timeout_seconds:.2f} seconds",
                    "errorType": "Sandbox.Timedout",
                    "stackTrace": [],
                }
            )
        if message["type"] == "error":
            raise InvocationError(message["error"])
        return str(message["payload"])

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        try:
            view = memoryview(_HEADER.pack(len(data)) + data)
            while view:
                view = view[os.write(self._write_fd, view) :]
        except BrokenPipeError:
            pass  # the worker died; _receive reports it

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None on timeout; raises InvocationError if the worker died."""
        header = self._read(_HEADER.size, deadline)
        if header is None:
            return None
        body = self._read(_HEADER.unpack(header)[0], deadline)
        return None if body is None else json.loads(body)

    def _read(self, size: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._read_fd, size - len(data))
            if not chunk:
                code = self.process.wait()
                raise InvocationError(
                    {
                        "errorMessage": f"Runtime exited with error: exit status {code}",
                        "errorType": "Runtime.ExitError",
                        "stackTrace": [],
                    }
                )
            data += chunk
        return bytes(data)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read_fd = self._write_fd = -1
        for relay in self._relays:
            relay.join(timeout=5)

    def stop(self) -> None:
        """Close the pipe (the worker exits on EOF), then make sure it is gone."""
        with contextlib.suppress(OSError):
            os.close(self._write_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.kill()


class LocalFunction:
    """A function's unpacked artifacts and its pool of warm workers."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        python: str | None = None,
        base_env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        max_concurrency: int = 2,
        log: Log = print,
    ) -> None:
        self.spec = spec
        self.python = python or find_python(spec.python_version)
        self.log = log
        self.max_concurrency = max_concurrency
        self._root = Path(tempfile.mkdtemp(prefix=f"lambda-{spec.name}-", dir=work_dir))
        self.task_root = self._root / "task"
        self.opt_root = self._root / "opt"
        _unzip(spec.code_zip, self.task_root)
        self.opt_root.mkdir()
        for layer in spec.layer_zips:
            _unzip(layer, self.opt_root)
        self.env = _function_env(spec, base_env or {}, self.task_root)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._available = threading.Condition()
        self._closed = False

    def invoke(self, event: dict[str, Any], request_id: str) -> str:
        """Run one invocation on a warm (or new) worker; JSON text or InvocationError."""
        worker = self._acquire()
        healthy = False
        try:
            worker.ensure_ready()
            payload = worker.invoke(event, request_id, time.monotonic() + self.spec.timeout_seconds)
            healthy = True
            return payload
        except InvocationError as error:
            error.document.setdefault("requestId", request_id)
            # An error raised by the handler leaves the worker warm; anything else ends it.
            healthy = (
                worker.ready
                and worker.alive
                and error.document.get("errorType")
                not in (
                    "Sandbox.Timedout",
                    "Runtime.ExitError",
                )
            )
            raise
        finally:
            self._release(worker, healthy)

    def _acquire(self) -> _Worker:
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name} is stopped")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.max_concurrency:
                    worker = _Worker(
                        self.spec,
                        python=self.python,
                        task=self.task_root,
                        opt=self.opt_root,
                        env=self.env,
                        log=self.log,
                    )
                    self._all.add(worker)
                    return worker
                self._available.wait()

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._available:
            if healthy and worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
                worker.kill()
            self._available.notify()

    def warm(self) -> None:
        """Start one worker and run its init phase now, so import errors show at startup."""
        worker = self._acquire()
        try:
            worker.ensure_ready()
        finally:
            self._release(worker, healthy=worker.ready)

    @property
    def worker_pids(self) -> list[int]:
        with self._available:
            return [w.process.pid for w in self._all]

    def close(self) -> None:
        with self._available:
            self._closed = True
            workers, self._all, self._idle = list(self._all), set(), []
            self._available.notify_all()
        for worker in workers:
            worker.stop()
        shutil.rmtree(self._root, ignore_errors=True)


def _unzip(archive: Path, destination: Path) -> None:
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist (run `make package`)")
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(destination)  # extractall drops absolute and ../ members


def _function_env(
    spec: FunctionSpec, base_env: Mapping[str, str], task_root: Path
) -> dict[str, str]:
    """The environment Lambda gives a function: reserved variables, then the function's own."""
    stream_date = time.strftime("%Y/%m/%d", time.gmtime())
    env = {
        "PATH": os.environ.get("PATH", _DEFAULT_PATH),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{stream_date}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "_HANDLER": spec.handler,
        # A function has no AWS config files and no instance metadata: only its role's
        # credentials, which base_env carries.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(base_env)
    env.update(spec.environment)
    return env


# ---------------------------------------------------------------------------
# Events and responses (payload format 2.0)
# ---------------------------------------------------------------------------
def build_event(
    *,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
    url_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The event a Function URL passes to the function for this HTTP request."""
    now = time.time() if now is None else now
    split = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    host = merged.get("host", "localhost")
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    merged.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path or "/",
        "rawQueryString": split.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if split.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": url_id,
        "domainName": host,
        "domainPrefix": url_id,
        "http": {
            "method": method,
            "path": split.path or "/",
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if body:
        if is_text_content_type(merged.get("content-type")):
            event["body"] = body.decode("utf-8", errors="replace")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def is_text_content_type(content_type: str | None) -> bool:
    """Bodies of these types reach the function as text; all others base64-encoded."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


class BadResponseError(Exception):
    """The function returned something a Function URL cannot turn into HTTP."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def map_response(payload: str) -> HttpResponse:
    """Lambda's Function URL response mapping of a handler's JSON result."""
    try:
        result = json.loads(payload)
    except ValueError as error:
        raise BadResponseError(f"the result is not JSON: {error}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        # "If your function returns valid JSON and doesn't return a statusCode, Lambda
        # assumes" a 200 with the result as an application/json body.
        return HttpResponse(200, [("Content-Type", "application/json")], payload.encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponseError(f"statusCode must be an HTTP status integer, not {status!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadResponseError("headers must be an object")
    for name, value in raw_headers.items():
        if isinstance(value, dict | list):
            raise BadResponseError(f"header {name!r} must be a string")
        headers.append((str(name), _header_text(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    return HttpResponse(status, headers, _response_body(result))


def _response_body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadResponseError("body must be a string")
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as error:
            raise BadResponseError(f"body is marked base64 but is not: {error}") from None
    return body.encode("utf-8")


def _header_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ---------------------------------------------------------------------------
# The HTTP side
# ---------------------------------------------------------------------------
class FunctionUrlServer:
    """A Function URL for ``spec`` on ``http://host:port`` (``port=0``: any free port)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        python: str | None = None,
        base_env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        max_concurrency: int = 2,
        log: Log = print,
    ) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self.log = log
        self.function = LocalFunction(
            spec,
            python=python,
            base_env=base_env,
            work_dir=work_dir,
            max_concurrency=max_concurrency,
            log=log,
        )
        self.url_id = spec.url_id or uuid.uuid5(uuid.NAMESPACE_URL, spec.arn).hex
        self._httpd: LoopbackHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}/"

    def start(self, *, warm: bool = False) -> None:
        """Listen; with ``warm``, also run the init phase now so import errors show at once."""
        if self._httpd is not None:
            return
        if warm:
            self.function.warm()
        self._httpd = LoopbackHTTPServer((self.host, self.port), _Handler, self, log=self.log)
        self.port = self._httpd.port
        self._httpd.start(f"function-url:{self.spec.name}")

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.stop()
        self.function.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> HttpResponse:
        request_id = str(uuid.uuid4())
        common = [("x-amzn-RequestId", request_id)]
        if self.spec.auth_type == "AWS_IAM" and not _is_sigv4_signed(target, headers):
            return HttpResponse(
                403, [*common, ("Content-Type", "application/json")], b'{"Message":"Forbidden"}'
            )
        event = build_event(
            method=method,
            target=target,
            headers=headers,
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            url_id=self.url_id,
        )
        try:
            response = map_response(self.function.invoke(event, request_id))
        except InvocationError as error:
            self.log(f"[{self.spec.name}] invocation failed: {json.dumps(error.document)}")
            return _internal_server_error(common)
        except BadResponseError as error:
            self.log(f"[{self.spec.name}] invalid response for a Function URL: {error}")
            return _internal_server_error(common)
        return HttpResponse(response.status, [*common, *response.headers], response.body)


def _internal_server_error(common: list[tuple[str, str]]) -> HttpResponse:
    # What a Function URL answers when the function fails; the details are in the log only.
    return HttpResponse(
        502, [*common, ("Content-Type", "application/json")], b"Internal Server Error"
    )


def _is_sigv4_signed(target: str, headers: Sequence[tuple[str, str]]) -> bool:
    authorization = next((v for k, v in headers if k.lower() == "authorization"), "")
    if authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization:
        return True
    return "X-Amz-Signature=" in urlsplit(target).query  # a presigned URL


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
            response = app.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if not any(name.lower() == "date" for name, _ in response.headers):
            self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.monotonic() - started) * 1000
        app.log(f"{app.spec.name} {self.command} {self.path} {response.status} {elapsed:.0f} ms")

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


# ---------------------------------------------------------------------------
# Command line: one function, e.g. against the real SageMaker endpoint
# ---------------------------------------------------------------------------
def _credentials_env() -> dict[str, str]:
    """The caller's AWS credentials (any source botocore knows), as a function's role's."""
    try:
        import botocore.session
    except ImportError:
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        return {k: os.environ[k] for k in keys if k in os.environ}
    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        return {}
    frozen = credentials.get_frozen_credentials()
    env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    return env


def _default_region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    with contextlib.suppress(ImportError):
        import botocore.session

        region = botocore.session.Session().get_config_variable("region")
    return region or "us-east-1"


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.function_urls",
        description="Serve a packaged Lambda function behind a local Function URL.",
    )
    parser.add_argument("--zip", type=Path, required=True, help="the function's package")
    parser.add_argument(
        "--layer", type=Path, action="append", default=[], help="a layer zip (repeatable, in order)"
    )
    parser.add_argument("--handler", required=True, help="e.g. chat.handler.handler")
    parser.add_argument("--name", help="function name (default: the zip's stem)")
    parser.add_argument(
        "--env", type=_key_value, action="append", default=[], help="NAME=VALUE (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (Lambda's default: 3)")
    parser.add_argument("--memory", type=int, default=128, help="MB (Lambda's default: 128)")
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--region", default=None, help="default: your AWS configuration's")
    parser.add_argument(
        "--auth", choices=("NONE", "AWS_IAM"), default="NONE", help="the URL's auth type"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--python", help="interpreter for the function (default: found by version)")
    parser.add_argument(
        "--no-credentials",
        action="store_true",
        help="do not pass your AWS credentials to the function",
    )
    args = parser.parse_args(argv)
    region = args.region or _default_region()
    spec = FunctionSpec(
        name=args.name or args.zip.stem,
        handler=args.handler,
        code_zip=args.zip,
        layer_zips=tuple(args.layer),
        environment=dict(args.env),
        timeout_seconds=args.timeout,
        memory_mb=args.memory,
        runtime=args.runtime,
        region=region,
        auth_type=args.auth,
    )
    base_env = {} if args.no_credentials else _credentials_env()
    # Endpoint overrides (AWS_ENDPOINT_URL*) in your shell reach the function, as --env would.
    base_env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")})

    log = write_line
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = FunctionUrlServer(
        spec, host=args.host, port=args.port, python=args.python, base_env=base_env, log=log
    )
    try:
        server.start(warm=True)
    except InvocationError as error:
        server.stop()
        print(f"error: {spec.name} failed to initialise: {error}", file=sys.stderr)
        return 1
    log(f"{spec.name}: {server.url} (handler {spec.handler}, timeout {spec.timeout_seconds:g} s)")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
