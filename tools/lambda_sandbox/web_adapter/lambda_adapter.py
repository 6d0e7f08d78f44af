#!/usr/bin/env python3
"""A stand-in for AWS's Lambda Web Adapter 1.1.0 (``/opt/extensions/lambda-adapter``).

Installed as the extension of the local adapter layer (see ``__init__.py``); the layer's
``/opt/bootstrap`` (``AWS_LAMBDA_EXEC_WRAPPER``) execs the function's start script, which
starts the web app. This process then does what LWA's Rust binary does:

1. registers as the extension ``lambda-adapter`` (for no event);
2. polls ``GET http://127.0.0.1:$AWS_LWA_PORT$AWS_LWA_READINESS_CHECK_PATH`` every 10 ms until
   a status in ``AWS_LWA_READINESS_CHECK_HEALTHY_STATUS`` (default 100-499);
3. under SnapStart: POSTs ``AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH``, waits on the Runtime
   API's ``restore/next``, POSTs ``..._AFTER_RESTORE_PATH`` (each must answer 2xx) and
   checks readiness again; requests for a hook path are answered 403, never forwarded;
4. polls the Runtime API for events and forwards each as HTTP: method, ``rawPath?rawQuery``,
   headers, cookies (one ``cookie`` header), the decoded body, and the two headers it owns,
   ``x-amzn-request-context`` (the event's requestContext) and ``x-amzn-lambda-context``
   (the invocation's context), overwriting any the client sent;
5. answers with the app's response: in ``AWS_LWA_INVOKE_MODE=response_stream`` as Lambda's
   streaming HTTP integration response (a JSON prelude ``{statusCode, headers, cookies}``,
   8 NUL bytes, then the body as the app writes it, chunk by chunk), else buffered, as a
   payload format 2.0 response.

Standard library only: it runs on the function's interpreter (``python3`` on ``PATH``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import posixpath
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

RUNTIME = "/2018-06-01/runtime"
STREAM_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_SEPARATOR = b"\0" * 8
# Headers the adapter sets itself; a client's copies never reach the app.
OWNED_HEADERS = ("x-amzn-request-context", "x-amzn-lambda-context")
_HOP_BY_HOP = ("content-length", "transfer-encoding", "connection")
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


def log(message: str) -> None:
    sys.stdout.write(f"[lambda-adapter] {message}\n")
    sys.stdout.flush()


def status_codes(text: str) -> set[int]:
    codes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            codes.update(range(int(low), int(high or low) + 1))
    return codes


class Options:
    def __init__(self, env: dict[str, str]) -> None:
        self.host = env.get("AWS_LWA_HOST", "127.0.0.1")
        self.port = int(env.get("AWS_LWA_PORT") or env.get("PORT") or 8080)
        self.readiness_port = int(env.get("AWS_LWA_READINESS_CHECK_PORT") or self.port)
        self.readiness_path = env.get("AWS_LWA_READINESS_CHECK_PATH", "/")
        healthy = env.get("AWS_LWA_READINESS_CHECK_HEALTHY_STATUS")
        self.healthy = status_codes(healthy) if healthy else set(range(100, 500))
        timeout = env.get("AWS_LWA_READINESS_CHECK_TIMEOUT_SECONDS")
        self.readiness_timeout = float(timeout) if timeout else None
        self.streaming = env.get("AWS_LWA_INVOKE_MODE", "buffered").lower() == "response_stream"
        self.before_checkpoint = env.get("AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH") or None
        self.after_restore = env.get("AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH") or None
        self.snap_start = env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
        self.runtime_api = env.get("AWS_LWA_LAMBDA_RUNTIME_API_PROXY") or env.get(
            "AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"
        )
        self.hook_paths = {
            canonical(p) for p in (self.before_checkpoint, self.after_restore) if p is not None
        }
        self.tcp_readiness = env.get("AWS_LWA_READINESS_CHECK_PROTOCOL", "http").lower() == "tcp"
        self.base_path = env.get("AWS_LWA_REMOVE_BASE_PATH") or None
        self.authorization_source = env.get("AWS_LWA_AUTHORIZATION_SOURCE", "").lower() or None
        errors = env.get("AWS_LWA_ERROR_STATUS_CODES")
        self.error_status_codes = status_codes(errors) if errors else set()
        # LWA settings this stand-in does not implement: refused, never silently ignored.
        # (LWA itself ignores compression when streaming, with a warning.)
        self.compression = env.get("AWS_LWA_ENABLE_COMPRESSION", "false").lower() == "true"
        self.unsupported = [
            name
            for name, on in (
                ("AWS_LWA_ASYNC_INIT", env.get("AWS_LWA_ASYNC_INIT", "false").lower() == "true"),
                ("AWS_LWA_ENABLE_COMPRESSION", self.compression and not self.streaming),
            )
            if on
        ]


def canonical(path: str) -> str:
    """The route a path names, as the hook guard compares them (LWA 1.1.0)."""
    decoded = urllib.parse.unquote(path.split("?", 1)[0])
    normal = posixpath.normpath("/" + decoded.lstrip("/"))
    return normal.lower()


# ---------------------------------------------------------------------------
# The Extensions API and the readiness check
# ---------------------------------------------------------------------------
def register_extension(options: Options) -> None:
    """LWA registers in the background and ends the process if that fails."""
    try:
        _register_and_wait(options)
    except (OSError, http.client.HTTPException) as error:
        log(f"extension registration failed ({error}): terminating")
        os._exit(1)


def _register_and_wait(options: Options) -> None:
    connection = http.client.HTTPConnection(options.runtime_api)
    connection.request(
        "POST",
        "/2020-01-01/extension/register",
        body=b'{ "events": [] }',
        headers={"Lambda-Extension-Name": "lambda-adapter"},
    )
    response = connection.getresponse()
    response.read()
    identifier = response.getheader("Lambda-Extension-Identifier")
    if response.status != 200 or not identifier:
        log(f"extension registration failed with status {response.status}")
        os._exit(1)
    # Registered for no event: this call returns only when the environment ends.
    connection.request(
        "GET",
        "/2020-01-01/extension/event/next",
        headers={"Lambda-Extension-Identifier": identifier},
    )
    # The environment's end closes this call: the process ends with it.
    with contextlib.suppress(OSError, http.client.HTTPException):
        connection.getresponse().read()
    os._exit(0)


def wait_until_ready(options: Options) -> bool:
    started = time.monotonic()
    next_report = 2.0
    while True:
        try:
            connection = http.client.HTTPConnection(options.host, options.readiness_port, timeout=2)
            if options.tcp_readiness:  # AWS_LWA_READINESS_CHECK_PROTOCOL=tcp: a connection
                connection.connect()
                connection.close()
                return True
            connection.request("GET", options.readiness_path)
            status = connection.getresponse().status
            connection.close()
            if status in options.healthy:
                return True
        except (OSError, http.client.HTTPException):
            pass
        elapsed = time.monotonic() - started
        if options.readiness_timeout is not None and elapsed >= options.readiness_timeout:
            return False
        if elapsed >= next_report:
            log(f"app is not ready after {next_report * 1000:.0f}ms")
            next_report += 2.0
        time.sleep(0.01)


def call_hook(options: Options, path: str) -> None:
    connection = http.client.HTTPConnection(options.host, options.port, timeout=None)
    connection.request("POST", path, body=b"", headers={"content-length": "0"})
    response = connection.getresponse()
    response.read()
    connection.close()
    if not 200 <= response.status < 300:
        raise RuntimeError(f"SnapStart hook POST {path} answered {response.status}")


# ---------------------------------------------------------------------------
# One invocation
# ---------------------------------------------------------------------------
def lambda_context(headers: http.client.HTTPMessage, env: dict[str, str]) -> dict[str, Any]:
    """``x-amzn-lambda-context``: lambda_runtime's ``Context`` as serde writes it."""
    return {
        "request_id": headers.get("Lambda-Runtime-Aws-Request-Id", ""),
        "deadline": int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
        "invoked_function_arn": headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
        "xray_trace_id": headers.get("Lambda-Runtime-Trace-Id"),
        "client_context": None,
        "identity": None,
        "tenant_id": None,
        "env_config": {
            "function_name": env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            "memory": int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0),
            "version": env.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
            "log_stream": env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            "log_group": env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
        },
    }


def app_request(
    event: dict[str, Any], context: dict[str, Any], options: Options
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """(method, target, headers, body) of the HTTP request a Function URL event becomes."""
    http_context = (event.get("requestContext") or {}).get("http") or {}
    method = http_context.get("method") or event.get("httpMethod") or "GET"
    target = event.get("rawPath") or "/"
    if options.base_path and target.startswith(options.base_path):
        target = target[len(options.base_path) :] or "/"
    if event.get("rawQueryString"):
        target += "?" + event["rawQueryString"]
    headers = [
        (name.lower(), str(value))
        for name, value in (event.get("headers") or {}).items()
        if name.lower() not in (*OWNED_HEADERS, *_HOP_BY_HOP)
    ]
    source = options.authorization_source
    if source and any(name == source for name, _ in headers):
        original = next(value for name, value in headers if name == source)
        headers = [(n, v) for n, v in headers if n not in (source, "authorization")]
        headers.append(("authorization", original))
    if event.get("cookies"):
        headers = [(n, v) for n, v in headers if n != "cookie"]
        headers.append(("cookie", "; ".join(event["cookies"])))
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if not any(name == "host" for name, _ in headers):
        headers.append(("host", "localhost"))
    headers.append(("x-amzn-request-context", json.dumps(event.get("requestContext") or {})))
    headers.append(("x-amzn-lambda-context", json.dumps(context)))
    headers.append(("content-length", str(len(raw))))
    return method, target, headers, raw


class Adapter:
    def __init__(self, options: Options, env: dict[str, str]) -> None:
        self.options = options
        self.env = env
        self.runtime = http.client.HTTPConnection(options.runtime_api)
        self.app: http.client.HTTPConnection | None = None

    def serve_forever(self) -> None:
        while True:
            self.runtime.request("GET", f"{RUNTIME}/invocation/next")
            response = self.runtime.getresponse()
            event = json.loads(response.read() or b"{}")
            request_id = response.getheader("Lambda-Runtime-Aws-Request-Id", "")
            context = lambda_context(response.headers, self.env)
            try:
                self.invoke(request_id, event, context)
            except (OSError, http.client.HTTPException, ValueError) as error:
                self.app = None  # a broken connection is not reused
                self.post_error(request_id, type(error).__name__, str(error))

    def forward(self, event: dict[str, Any], context: dict[str, Any]) -> http.client.HTTPResponse:
        method, target, headers, body = app_request(event, context, self.options)
        if canonical(target) in self.options.hook_paths:
            raise _Forbidden
        for attempt in (1, 2):  # an idle keep-alive connection the app closed: once more
            if self.app is None:
                self.app = http.client.HTTPConnection(self.options.host, self.options.port)
            try:
                self.app.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    self.app.putheader(name, value)
                self.app.endheaders(body)
                return self.app.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.app.close()
                self.app = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def invoke(self, request_id: str, event: dict[str, Any], context: dict[str, Any]) -> None:
        try:
            response = self.forward(event, context)
        except _Forbidden:
            status, headers, body = 403, [("content-type", "text/plain")], b"Forbidden"
            if self.options.streaming:
                self.post_stream(request_id, status, headers, iter([body]))
            else:
                self.post_buffered(request_id, status, headers, body)
            return
        headers = [(n.lower(), v) for n, v in response.getheaders()]
        if response.will_close:
            assert self.app is not None
            self.app.close()
            self.app = None
        if response.status in self.options.error_status_codes:
            # AWS_LWA_ERROR_STATUS_CODES: the invocation fails with the app's answer.
            text = response.read().decode("utf-8", errors="replace")
            self.post_error(
                request_id,
                "Error",
                json.dumps({"statusCode": response.status, "body": text}),
            )
            return
        if self.options.streaming:
            chunks = iter(lambda: response.read1(65536), b"")
            self.post_stream(request_id, response.status, headers, chunks)
        else:
            self.post_buffered(request_id, response.status, headers, response.read())

    def post_buffered(
        self, request_id: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        cookies = [v for n, v in headers if n == "set-cookie"]
        joined: dict[str, str] = {}
        for name, value in headers:
            if name not in ("set-cookie", "transfer-encoding"):
                joined[name] = f"{joined[name]},{value}" if name in joined else value
        content_type = joined.get("content-type", "")
        text = content_type.startswith(_TEXT_TYPES) or not content_type
        try:
            encoded, is_base64 = (body.decode("utf-8"), False) if text else ("", True)
        except UnicodeDecodeError:
            is_base64 = True
        if is_base64:
            encoded = base64.b64encode(body).decode()
        payload = {
            "statusCode": status,
            "headers": joined,
            "cookies": cookies,
            "body": encoded,
            "isBase64Encoded": is_base64,
        }
        self._post(f"{RUNTIME}/invocation/{request_id}/response", json.dumps(payload).encode())

    def post_stream(
        self,
        request_id: str,
        status: int,
        headers: list[tuple[str, str]],
        body: Iterator[bytes],
    ) -> None:
        prelude_headers: dict[str, str | list[str]] = {}
        for name, value in headers:
            if name in ("set-cookie", "transfer-encoding"):
                continue
            previous = prelude_headers.get(name)
            if previous is None:
                prelude_headers[name] = value
            else:
                prelude_headers[name] = [
                    *(previous if isinstance(previous, list) else [previous]),
                    value,
                ]
        prelude = {
            "statusCode": status,
            "headers": prelude_headers,
            "cookies": [v for n, v in headers if n == "set-cookie"],
        }
        connection = self.runtime
        connection.putrequest("POST", f"{RUNTIME}/invocation/{request_id}/response")
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", STREAM_CONTENT_TYPE)
        connection.putheader("Trailer", "Lambda-Runtime-Function-Error-Type")
        connection.putheader("Trailer", "Lambda-Runtime-Function-Error-Body")
        connection.endheaders()
        _send_chunk(connection, json.dumps(prelude).encode() + PRELUDE_SEPARATOR)
        trailers = b""
        try:
            for chunk in body:
                _send_chunk(connection, chunk)
        except (OSError, http.client.HTTPException) as error:
            self.app = None
            document = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)})
            trailers = (
                f"Lambda-Runtime-Function-Error-Type: {type(error).__name__}\r\n"
                "Lambda-Runtime-Function-Error-Body: "
                f"{base64.b64encode(document.encode()).decode()}\r\n"
            ).encode()
        connection.send(b"0\r\n" + trailers + b"\r\n")
        connection.getresponse().read()

    def post_error(self, request_id: str, error_type: str, message: str) -> None:
        document = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        self.runtime.close()  # whatever state the failed call left it in
        self._post(f"{RUNTIME}/invocation/{request_id}/error", document, error_type)

    def _post(self, path: str, body: bytes, error_type: str | None = None) -> None:
        headers = {"Content-Type": "application/json"}
        if error_type:
            headers["Lambda-Runtime-Function-Error-Type"] = error_type
        self.runtime.request("POST", path, body=body, headers=headers)
        self.runtime.getresponse().read()


class _Forbidden(Exception):
    """A request for a SnapStart hook path: never forwarded."""


def _send_chunk(connection: http.client.HTTPConnection, data: bytes) -> None:
    connection.send(b"%x\r\n%s\r\n" % (len(data), data))


def snap_start(options: Options) -> None:
    if options.before_checkpoint:
        call_hook(options, options.before_checkpoint)
    connection = http.client.HTTPConnection(options.runtime_api)
    connection.request("GET", f"{RUNTIME}/restore/next")  # returns after a restore
    connection.getresponse().read()
    if options.after_restore:
        call_hook(options, options.after_restore)
    if not wait_until_ready(options):
        raise RuntimeError("the app did not pass the readiness check after the restore")


def init_error(options: Options, error_type: str, message: str) -> None:
    connection = http.client.HTTPConnection(options.runtime_api)
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    connection.request(
        "POST",
        f"{RUNTIME}/init/error",
        body=body,
        headers={"Lambda-Runtime-Function-Error-Type": error_type},
    )
    connection.getresponse().read()


def main() -> int:
    env = dict(os.environ)
    options = Options(env)
    if options.unsupported:
        message = f"the local Lambda Web Adapter does not implement {options.unsupported}"
        init_error(options, "Extension.Unsupported", message)
        return 1
    if options.compression and options.streaming:
        log("Compression is not supported with response streaming. Disabling compression.")
    threading.Thread(target=register_extension, args=(options,), daemon=True).start()
    if not wait_until_ready(options):
        init_error(options, "Extension.ReadinessTimeout", "the app failed its readiness check")
        return 1
    if options.snap_start:
        try:
            snap_start(options)
        except (OSError, RuntimeError, http.client.HTTPException) as error:
            init_error(options, "Extension.SnapStartHookFailed", str(error))
            return 1
    # The Runtime API going away ends the execution environment, and this process with it.
    with contextlib.suppress(ConnectionError, http.client.RemoteDisconnected):
        Adapter(options, env).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
