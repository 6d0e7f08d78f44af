"""``make bench``'s streaming figures: the Lambda Web Adapter path, as the local URLs run it.

* **first token, warm**: a fake SageMaker runtime (``StampingEndpoint``) streams
  ``InvokeEndpointWithResponseStream`` events whose tokens are the ``time.monotonic_ns()`` at
  which it wrote them (CLOCK_MONOTONIC: one clock for every process of the machine); the
  client reads the first token's text from the SSE stream and subtracts. p50 over warm
  requests, through the function's app, the adapter stand-in and the local Function URL.
  The same through a minimal app (standard library, each chunk stamped as it is written)
  says what the adapter and the URL take alone.
* **cold start of the streaming path**: a fresh execution environment (namespace, mounts,
  ``/opt/bootstrap``, the start script, the app's imports, the readiness check) to the first
  byte of the first response at the client, against the precompiled boto3 floor's cold start
  measured in the same loop; the minimal app's cold start is what the adapter costs alone.

Standard library only, apart from the sandbox and the URL server.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tools.function_urls.server import FunctionUrlServer
from tools.http_server import LoopbackService
from tools.lambda_sandbox import artifacts as sandbox
from tools.lambda_sandbox.functions import FunctionSpec
from tools.lambda_sandbox.web_adapter import build_layer
from tools.lambda_sandbox.wrapped import free_port
from tools.model_server.eventstream import payload_part

GOAL_FIRST_TOKEN_MS = 50.0
START_SCRIPT = "run.sh"  # the streaming packages' handler (the root module's start script)
TOKENS = 6
TOKEN_INTERVAL = 0.02  # seconds between tokens: a fast model's pace
MINIMAL_APP = r"""
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(TOKENS):
            data = b'data: {"choices":[{"delta":{"content":"%d"}}]}\n\n' % time.monotonic_ns()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(TOKEN_INTERVAL)
        self.wfile.write(b"0\r\n\r\n")

ThreadingHTTPServer(("127.0.0.1", int(os.environ["AWS_LWA_PORT"])), App).serve_forever()
""".replace("TOKEN_INTERVAL", repr(TOKEN_INTERVAL)).replace("TOKENS", str(TOKENS))


# ---------------------------------------------------------------------------
# A SageMaker runtime whose streamed tokens are the times they were written
# ---------------------------------------------------------------------------
def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class StampingEndpoint(LoopbackService):
    """``InvokeEndpointWithResponseStream`` (TGI's Messages API stream) and ``InvokeEndpoint``."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0, handler=_EndpointHandler)


class _EndpointHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        base = {"object": "chat.completion.chunk", "model": "stamps", "created": int(time.time())}
        if not self.path.endswith("/invocations-response-stream"):
            body = json.dumps(
                {
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Paris."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("X-Amzn-Invoked-Production-Variant", "AllTraffic")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number in range(TOKENS):
            delta = {"role": "assistant", "content": f"{time.monotonic_ns()} "}
            self._part(_sse({**base, "choices": [{"index": 0, "delta": delta}]}))
            if number < TOKENS - 1:
                time.sleep(TOKEN_INTERVAL)
        usage = {"prompt_tokens": 9, "completion_tokens": TOKENS, "total_tokens": 9 + TOKENS}
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        self._part(_sse({**base, "choices": [last], "usage": usage}) + b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _part(self, payload: bytes) -> None:
        message = payload_part(payload)
        self.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
        self.wfile.flush()


# ---------------------------------------------------------------------------
# Measuring through the local Function URL
# ---------------------------------------------------------------------------
def first_token_delay(url_server: FunctionUrlServer, body: bytes) -> float:
    """Seconds from the stamp in the first streamed token to its arrival here."""
    connection = http.client.HTTPConnection(url_server.host, url_server.port, timeout=120)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if url_server.spec.auth_type == "AWS_IAM":  # any SigV4 header: not verified locally
        headers["Authorization"] = (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/lambda/"
            "aws4_request, SignedHeaders=host, Signature=0"
        )
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"the streaming URL answered {response.status}: {response.read()!r}")
    buffer = b""
    stamp: int | None = None
    while stamp is None:
        chunk = response.read1(65536)
        if not chunk:
            raise RuntimeError(f"the stream ended without a token: {buffer[-2000:]!r}")
        arrived = time.monotonic_ns()
        buffer += chunk
        stamp = _first_stamp(buffer)
    response.read()
    connection.close()
    return (arrived - stamp) / 1e9


def _first_stamp(buffer: bytes) -> int | None:
    for line in buffer.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        choices = json.loads(line[6:]).get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content")
        if content and content.split()[0].isdigit():
            return int(content.split()[0])
    return None


def minimal_package(folder: Path) -> Path:
    path = folder / "minimal-app.zip"
    with zipfile.ZipFile(path, "w") as archive:
        script = zipfile.ZipInfo(START_SCRIPT)
        script.external_attr = 0o100755 << 16
        archive.writestr(script, '#!/bin/sh\nexec python3 "$LAMBDA_TASK_ROOT/app.py"\n')
        archive.writestr("app.py", MINIMAL_APP)
    return path


def streams(build_dir: Path, function: str) -> bool:
    """Whether the built package is a streaming one (its start script is there)."""
    with zipfile.ZipFile(build_dir / f"{function}.zip") as archive:
        return START_SCRIPT in archive.namelist()


class StreamingBench:
    def __init__(self, build_dir: Path, scratch: Path, endpoint_url: str) -> None:
        self.build_dir = build_dir
        self.scratch = scratch
        self.adapter = build_layer(scratch / "lambda-web-adapter.zip")
        self.minimal = minimal_package(scratch)
        base = sandbox.lambda_environment(endpoint_url, scratch)
        self.environment = {
            k: v
            for k, v in base.items()
            if not k.startswith(("AWS_LAMBDA_", "AWS_REGION", "AWS_DEFAULT_REGION"))
        }
        self.environment.update(
            {
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": "/_lwa/before-checkpoint",
                "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": "/_lwa/after-restore",
            }
        )
        self.body = json.dumps([sandbox.QUESTION]).encode()

    def spec(self, function: str) -> FunctionSpec:
        if function == "minimal":
            code, layers = self.minimal, (self.adapter,)
        else:
            code, layers = (
                self.build_dir / f"{function}.zip",
                (
                    self.build_dir / "layer.zip",
                    self.adapter,
                ),
            )
        return FunctionSpec(
            name=f"bench-{function}",
            handler=START_SCRIPT,
            code_zip=code,
            layer_zips=layers,
            environment=self.environment,
            timeout_seconds=60,
            memory_mb=1024,
            region=sandbox.REGION,
            auth_type="AWS_IAM",
            invoke_mode="RESPONSE_STREAM",
        )

    def server(self, function: str) -> FunctionUrlServer:
        quiet: list[str] = []
        return FunctionUrlServer(
            self.spec(function), work_dir=self.scratch, log=quiet.append, max_concurrency=1
        )

    def warm_first_token(self, function: str, requests: int) -> list[float]:
        with self.server(function) as server:
            server.function.warm()
            first_token_delay(server, self.body)  # the first request pays lazy setup
            return [first_token_delay(server, self.body) for _ in range(requests)]

    def direct_cold_first_byte(self) -> float:
        """The minimal app without the adapter: its process start to a first response byte
        (polling its port as a client would): what the app costs before the adapter's share."""
        app = self.scratch / "direct" / "app.py"
        app.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(self.minimal) as archive:
            app.write_bytes(archive.read("app.py"))
        port = free_port()
        python = str(Path(sandbox.runtime_python()).resolve())
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, "-S", str(app)],
            env={"AWS_LWA_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    connection.request("POST", "/", body=self.body)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.001)
            response = connection.getresponse()
            response.read1(1)
            return time.perf_counter() - started
        finally:
            process.kill()
            process.wait()

    def cold_first_byte(self, function: str) -> float:
        """A fresh environment: the request's start to the first byte of the response."""
        with self.server(function) as server:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
            started = time.perf_counter()
            connection.request(
                "POST",
                "/",
                body=self.body,
                headers={
                    "Content-Type": "application/json",
                    "Accept": "text/event-stream",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/x, Signature=0",
                },
            )
            response = connection.getresponse()
            response.read1(1)
            seconds = time.perf_counter() - started
            response.read()
            connection.close()
            if response.status != 200:
                raise RuntimeError(f"{function} answered {response.status} on its cold start")
            return seconds


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def first_token_section(bench: StreamingBench, functions: list[str], requests: int) -> Iterator:
    for function in ["minimal", *functions]:
        delays = bench.warm_first_token(function, requests)
        p50 = statistics.median(delays)
        yield (
            f"first token: {function}",
            _ms(p50),
            _ms(max(delays)),
            "met" if p50 * 1000 <= GOAL_FIRST_TOKEN_MS else "NOT met",
        )


def cold_section(
    bench: StreamingBench, functions: list[str], runs: int, floor: Callable[[], float]
) -> Iterator:
    """Each contestant `runs` times, interleaved with the floor's cold start (``floor()``) so
    that machine drift hits every one alike; ratios against this loop's floor."""
    contestants = ["minimal", *functions]
    seconds: dict[str, list[float]] = {name: [] for name in ["floor", *contestants]}
    for _ in range(runs):
        seconds["floor"].append(floor())
        for function in contestants:
            seconds[function].append(bench.cold_first_byte(function))
    floor_seconds = statistics.median(seconds["floor"])
    yield ("cold: floor (awslambdaric, in this loop)", _ms(floor_seconds), "", "")
    for function in contestants:
        median = statistics.median(seconds[function])
        met = "met" if median <= 3 * floor_seconds else "NOT met"
        goal = "" if function == "minimal" else met
        yield (f"cold, streaming: {function}", _ms(median), f"{median / floor_seconds:.1f}x", goal)


def adapter_share_section(bench: StreamingBench, runs: int) -> Iterator:
    direct = statistics.median(bench.direct_cold_first_byte() for _ in range(runs))
    yield ("cold, minimal app alone (no adapter)", _ms(direct), "", "")


def run_all(
    build_dir: Path, endpoint_runs: int, cold_runs: int, floor: Callable[[], float]
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(first-token rows, cold-start rows); the app's rows only for streaming packages."""
    functions = [name for name in ("chat", "qa") if streams(build_dir, name)]
    endpoint = StampingEndpoint().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stream-") as scratch:
            bench = StreamingBench(build_dir, Path(scratch), endpoint.url)
            first = list(first_token_section(bench, functions, endpoint_runs))
            cold = list(cold_section(bench, functions, cold_runs, floor))
            cold += adapter_share_section(bench, cold_runs)
    finally:
        endpoint.stop()
    return first, cold
