"""Door 2 over real HTTP: a function's ASGI app on a loopback port, called as LWA calls it.

``serving(app)`` runs uvicorn (as the start script does) on a thread for the test, and
``start_script(...)`` a packaged function's run.sh as LWA's /opt/bootstrap execs it;
``adapter_headers(event)`` are the two headers the Lambda Web Adapter adds to a forwarded
Function URL request; ``post``/``open_stream`` send a request and read the reply as it comes,
and ``SseReader`` reads Server-Sent Events one at a time.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llm_app.http.server import uvicorn_server
from tests.support.events import FUNCTION_NAME, REQUEST_ID
from tools.function_urls.cors import Cors
from tools.lambda_sandbox import artifacts as sandbox
from tools.lambda_sandbox import events as sandbox_events


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (the start script's server); yields host:port."""
    port = free_port()
    server = uvicorn_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started serving"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def start_script(
    task: Path,
    layer: Path,
    env: Mapping[str, str],
    scratch: Path,
    *,
    stdout: IO[bytes] | None = None,
) -> Iterator[str]:
    """The package's run.sh as LWA's /opt/bootstrap execs it: Lambda's environment (`env`),
    python3 on PATH (the runtime's 3.12), the layer on the PYTHONPATH Lambda sets (here the
    unzipped layer, as /opt/python is not ours to write). Yields host:port once the app
    answers the adapter's readiness check (GET / until it answers)."""
    runtime_bin = scratch / "bin"
    runtime_bin.mkdir(exist_ok=True)
    if not (runtime_bin / "python3").exists():
        (runtime_bin / "python3").symlink_to(sandbox.runtime_python())
    port = free_port()
    full_env = {
        **env,
        "PATH": f"{runtime_bin}:/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(task),
        "PYTHONPATH": str(layer),
        "_HANDLER": "run.sh",
        "AWS_LWA_PORT": str(port),
    }
    server = subprocess.Popen([str(task / "run.sh")], env=full_env, cwd=scratch, stdout=stdout)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the start script exited"
            assert time.monotonic() < deadline, "the app never became ready"
            try:
                if send(address, None, {}, method="GET").status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield address
    finally:
        server.terminate()
        server.wait(timeout=10)


def adapter_headers(
    event: Mapping[str, Any], *, seconds_left: float = 180, trace_header: str | None = None
) -> dict[str, str]:
    """x-amzn-request-context (the event's requestContext) and x-amzn-lambda-context, whose
    `xray_trace_id` is the runtime API's Lambda-Runtime-Trace-Id (LWA and the local stand-in
    copy it there)."""
    lambda_context = {
        "request_id": REQUEST_ID,
        "deadline": int((time.time() + seconds_left) * 1000),
        "invoked_function_arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION_NAME}",
        "xray_trace_id": trace_header,
        "client_context": None,
        "identity": None,
        "env_config": {
            "function_name": FUNCTION_NAME,
            "memory": 1024,
            "version": "$LATEST",
            "log_stream": "",
            "log_group": "",
        },
    }
    return {
        "x-amzn-request-context": json.dumps(event["requestContext"]),
        "x-amzn-lambda-context": json.dumps(lambda_context),
    }


def forwarded(
    event: Mapping[str, Any], *, trace_header: str | None = None, **extra_headers: str
) -> dict[str, str]:
    """The headers LWA forwards for a Function URL event: the client's, plus its own two."""
    headers = {k: v for k, v in event["headers"].items() if k not in ("host", "content-length")}
    return {**headers, **adapter_headers(event, trace_header=trace_header), **extra_headers}


def open_stream(
    address: str,
    body: bytes | str | None,
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    path: str = "/",
) -> http.client.HTTPResponse:
    """Send the request; the response is read by the caller, as it arrives."""
    connection = http.client.HTTPConnection(address, timeout=30)
    # One request per connection, so that stopping the server never waits for an idle one.
    connection.request(method, path, body=body, headers={**headers, "connection": "close"})
    return connection.getresponse()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)


def send(
    address: str, body: bytes | str | None, headers: Mapping[str, str], **target: str
) -> Reply:
    """The whole reply; ``target``: open_stream's ``method`` and ``path``."""
    response = open_stream(address, body, headers, **target)
    data = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


class SseReader:
    """Server-Sent Events from a response, one event at a time, as the server sends them."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.response = response

    def next_event(self) -> tuple[str | None, str] | None:
        """(event name, data) of the next event; None at the end of the stream."""
        name: str | None = None
        data: list[str] = []
        while True:
            line = self.response.readline()
            if not line:
                return None if not data else (name, "\n".join(data))
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:
                if data:
                    return name, "\n".join(data)
                continue
            if text.startswith("event:"):
                name = text[len("event:") :].strip()
            elif text.startswith("data:"):
                data.append(text[len("data:") :].strip())

    def events(self) -> list[tuple[str | None, str]]:
        collected = []
        while (event := self.next_event()) is not None:
            collected.append(event)
        return collected


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    """The events of a whole SSE body (the buffered handler's)."""
    events = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        events.append((name, "\n".join(data)))
    return events


def text_of(events: list[tuple[str | None, str]]) -> str:
    """The answer's text: the content of every chat.completion.chunk."""
    pieces = []
    for name, data in events:
        if name is None and data != "[DONE]":
            chunk = json.loads(data)
            if "choices" in chunk:
                pieces.append(chunk["choices"][0]["delta"].get("content", ""))
    return "".join(pieces)


def function_url_front(app: Any, cors: Cors) -> Any:
    """An ASGI app in front of door 2 that adds what AWS adds on the way to it: the URL's CORS
    (its preflight answered without the function, its headers on each response:
    tools.function_urls.cors, the stand-in's) and the adapter's two headers."""

    async def front(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        named = {name.lower(): value for name, value in headers}
        if cors.is_preflight(scope["method"], named):
            start = {"status": 200, "headers": _raw_headers(cors.preflight(named))}
            await send({"type": "http.response.start", **start})
            await send({"type": "http.response.body", "body": b""})
            return
        target = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        request = sandbox_events.HttpRequest(scope["method"], target, headers, b"", "127.0.0.1")
        event = sandbox_events.build_event(request, request_id=REQUEST_ID, url_id="front")
        added = _raw_headers(adapter_headers(event).items())

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
                message = {
                    **message,
                    "headers": _raw_headers(cors.response_headers(named.get("origin"), sent)),
                }
            await send(message)

        await app({**scope, "headers": [*scope["headers"], *added]}, receive, send_with_cors)

    return front


def _raw_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
