"""Functions behind the local Lambda Web Adapter, served by the local Function URLs.

A tiny web app (standard library) is packaged with a start script as the function, the
adapter stand-in as its layer, and run as Lambda runs it: /var/task and /opt mounted in a
namespace of its own, the layer's /opt/bootstrap exec'ing the start script, the adapter
polling the Runtime API. Each test sends real HTTP to the URL and reads what the app saw.
Incremental delivery is proven without timing: the app writes its next chunk only after the
test has read the previous one (a gate file per chunk).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.function_urls.server import FunctionUrlServer
from tools.lambda_sandbox import wrapped
from tools.lambda_sandbox.functions import FunctionSpec, InvocationError
from tools.lambda_sandbox.web_adapter import build_layer
from tools.lambda_sandbox.wrapped import NamespaceError, namespace_command
from tools.local import state

pytestmark = pytest.mark.local

START_SCRIPT = '#!/bin/sh\nexec python3 "$LAMBDA_TASK_ROOT/app.py"\n'
APP_SOURCE = r"""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
GATES = os.environ.get("GATE_DIR", "")
STATE = {"readiness_polls": 0, "hooks": []}

class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            STATE["readiness_polls"] += 1
            ready = time.monotonic() - STARTED > 0.3
            return self.reply(200 if ready else 503, b"")
        if self.path.startswith("/stream"):
            count = int(self.path.split("=")[1])
            self.send_response(201)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Set-Cookie", "a=1; Path=/")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for number in range(count):
                if number:  # wait until the client has read the previous chunk
                    gate = os.path.join(GATES, str(number - 1))
                    while not os.path.exists(gate):
                        time.sleep(0.005)
                data = f"data: token {number}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            open(os.path.join(GATES, "finished"), "w").close()  # before the stream's end
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/teapot":
            return self.reply(418, b"short and stout")
        if self.path == "/crash":
            os._exit(1)
        if self.path == "/cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"6\r\nbefore\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        return self.do_POST()

    def do_POST(self):
        if self.path.startswith("/snapstart/"):
            STATE["hooks"].append(self.path)
            return self.reply(204, b"")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_hex": body.hex(),
            "port": self.server.server_address[1],
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "task": sorted(os.listdir("/var/task")),
            "task_writable": os.access("/var/task", os.W_OK),
            "opt": sorted(os.listdir("/opt")),
            "no_site": sys.flags.no_site,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_"))},
            **STATE,
        }
        self.reply(200, json.dumps(seen).encode(), [("Content-Type", "application/json")])

ThreadingHTTPServer(("127.0.0.1", int(os.environ["AWS_LWA_PORT"])), App).serve_forever()
"""


def _namespaces_available() -> bool:
    try:
        namespace_command()
    except NamespaceError:
        return False
    return True


requires_namespaces = pytest.mark.skipif(
    not _namespaces_available(), reason="no mount namespace here (see docs/local-stack.md)"
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lwa")
    code = folder / "app.zip"
    with zipfile.ZipFile(code, "w") as archive:
        script = zipfile.ZipInfo("run.sh")
        script.external_attr = 0o100755 << 16
        archive.writestr(script, START_SCRIPT)
        archive.writestr("app.py", APP_SOURCE)
    return {"code": code, "layer": build_layer(folder / "adapter.zip"), "gates": folder}


def _spec(artifacts: dict[str, Path], name: str, **overrides: Any) -> FunctionSpec:
    environment = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_PORT": "8080",
        "AWS_LWA_READINESS_CHECK_PATH": "/health",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "GATE_DIR": str(artifacts["gates"] / name),
        **overrides.pop("environment", {}),
    }
    (artifacts["gates"] / name).mkdir(exist_ok=True)
    options: dict[str, Any] = {
        "name": name,
        "handler": "run.sh",
        "code_zip": artifacts["code"],
        "layer_zips": (artifacts["layer"],),
        "environment": environment,
        "timeout_seconds": 20.0,
        "invoke_mode": "RESPONSE_STREAM",
        **overrides,
    }
    return FunctionSpec(**options)


@pytest.fixture
def serve(artifacts: dict[str, Path], tmp_path: Path) -> Iterator[Any]:
    servers: list[FunctionUrlServer] = []
    logs: list[str] = []

    def start(name: str, **overrides: Any) -> FunctionUrlServer:
        spec = _spec(artifacts, name, **overrides)
        server = FunctionUrlServer(spec, work_dir=tmp_path, log=logs.append, max_concurrency=1)
        servers.append(server)
        return server.start(warm=True)

    start.logs = logs  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.stop()


def _request(
    server: FunctionUrlServer, method: str, path: str, body: bytes = b"", **headers: str
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request(method, path, body=body or None, headers=headers)
    return connection.getresponse()


@requires_namespaces
def test_chunks_reach_the_client_one_by_one_as_the_app_writes_them(
    serve: Any, artifacts: dict[str, Path]
) -> None:
    server = serve("streamer")
    response = _request(server, "GET", "/stream?n=4")
    assert response.status == 201
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("x-amzn-RequestId")
    assert response.msg.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]
    received = b""
    for number in range(4):
        expected = f"data: token {number}\n\n".encode()
        while not received.endswith(expected):
            # Blocks unless chunk `number` was relayed before the app could write the next
            # one: the app waits for this test's gate file after each chunk.
            received += response.read1(1024)
        (artifacts["gates"] / "streamer" / str(number)).touch()
    assert response.read() == b""
    assert received == b"".join(f"data: token {n}\n\n".encode() for n in range(4))


@requires_namespaces
def test_a_client_that_leaves_mid_stream_does_not_stop_the_function(
    serve: Any, artifacts: dict[str, Path]
) -> None:
    server = serve("leaver")
    (environment,) = server.function.worker_pids
    response = _request(server, "GET", "/stream?n=3")
    assert response.read1(1024).startswith(b"data: token 0")
    response.close()  # gone before the app writes the rest
    gates = artifacts["gates"] / "leaver"
    (gates / "0").touch()  # the app writes on, to nobody
    (gates / "1").touch()
    # One environment: the next request waits until Lambda has read the stream to its end.
    assert _request(server, "POST", "/", b"{}").status == 200
    assert (gates / "finished").exists()
    assert server.function.worker_pids == [environment]  # still warm, never cut off
    assert any("the client went away" in line for line in serve.logs)


@requires_namespaces
def test_the_app_gets_the_request_and_the_adapters_context_headers(serve: Any) -> None:
    server = serve("echo", auth_type="AWS_IAM")
    body = bytes(range(256))
    response = _request(
        server,
        "POST",
        "/echo/path?b=2&a=1",
        body,
        **{
            "Content-Type": "application/octet-stream",
            "Cookie": "session=abc; theme=dark",
            "x-amzn-request-context": '{"forged": true}',
            "x-amzn-lambda-context": '{"forged": true}',
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20260101/us-east-1/lambda/"
            "aws4_request, SignedHeaders=host, Signature=x",
        },
    )
    assert response.status == 200
    seen = json.loads(response.read())
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/path?b=2&a=1"
    assert bytes.fromhex(seen["body_hex"]) == body
    headers = seen["headers"]
    assert headers["cookie"] == "session=abc; theme=dark"
    request_context = json.loads(headers["x-amzn-request-context"])
    assert "forged" not in request_context
    assert request_context["authorizer"]["iam"]["accessKey"] == "AKIDLOCAL"
    assert request_context["http"]["method"] == "POST"
    lambda_context = json.loads(headers["x-amzn-lambda-context"])
    assert "forged" not in lambda_context
    assert lambda_context["invoked_function_arn"] == server.spec.arn
    assert lambda_context["deadline"] > time.time() * 1000
    assert lambda_context["request_id"] == request_context["requestId"]
    assert lambda_context["env_config"]["function_name"] == "echo"
    # As Lambda runs it: the code at /var/task, the layer at /opt, the runtime's interpreter
    # without site-packages, the readiness check polled until healthy.
    assert seen["task"] == ["app.py", "run.sh"]
    assert seen["opt"] == ["bootstrap", "extensions"]
    assert seen["task_writable"] is False  # read-only, as on Lambda
    assert seen["no_site"] == 1
    assert seen["env"]["LAMBDA_TASK_ROOT"] == "/var/task"
    assert seen["env"]["_HANDLER"] == "run.sh"
    assert seen["readiness_polls"] >= 2


@requires_namespaces
def test_functions_run_side_by_side_each_on_its_own_port(serve: Any) -> None:
    first, second = serve("one"), serve("two")
    seen = [json.loads(_request(s, "POST", "/", b"{}").read()) for s in (first, second)]
    assert seen[0]["port"] != seen[1]["port"]
    assert all(str(s["port"]) == s["env"]["AWS_LWA_PORT"] for s in seen)
    # make local-down finds a running environment by its leader's command line.
    (pid,) = first.function.worker_pids
    assert seen[0]["pid"] == pid  # the wrapper exec'd its way to the app: same process
    assert state.is_running(pid, first.function.worker_marker)


@requires_namespaces
def test_a_user_namespace_serves_as_well_where_the_kernel_allows_one(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an unprivileged user gets (`unshare -Urm`): the same mounts, as root of its own.
    user_namespace = ("unshare", "-Urm", "--propagation", "private")
    if subprocess.run([*user_namespace, "true"], check=False).returncode != 0:
        pytest.skip("no unprivileged user namespaces here")
    monkeypatch.setattr(wrapped, "namespace_command", lambda: user_namespace)
    seen = json.loads(_request(serve("userns"), "POST", "/", b"{}").read())
    assert seen["task"] == ["app.py", "run.sh"]
    assert seen["opt"] == ["bootstrap", "extensions"]


@requires_namespaces
def test_a_stream_cut_short_is_a_truncated_transfer_for_the_client(serve: Any) -> None:
    server = serve("cutter")
    response = _request(server, "GET", "/cut")
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert caught.value.partial == b"before"
    # The environment stays usable (the adapter reported the error, it did not crash).
    assert _request(server, "POST", "/", b"{}").status == 200


@requires_namespaces
def test_an_app_that_fails_before_answering_is_a_502_as_on_aws(serve: Any) -> None:
    server = serve("crasher")
    response = _request(server, "GET", "/crash")
    assert response.status == 502
    assert response.read() == b"Internal Server Error"
    assert any("response stream failed" in line for line in serve.logs)


@requires_namespaces
def test_buffered_mode_answers_payload_format_2_as_the_python_runtime_does(serve: Any) -> None:
    server = serve(
        "buffered",
        invoke_mode="BUFFERED",
        environment={"AWS_LWA_INVOKE_MODE": "buffered"},
    )
    response = _request(server, "POST", "/x", b'{"a": 1}', **{"Content-Type": "application/json"})
    assert response.status == 200
    assert response.getheader("Content-Length") is not None
    assert json.loads(response.read())["path"] == "/x"


@requires_namespaces
def test_snapstart_hooks_run_around_the_restore_and_are_not_reachable(serve: Any) -> None:
    server = serve(
        "snappy",
        snap_start=True,
        environment={
            "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": "/snapstart/before",
            "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": "/snapstart/after",
        },
    )
    seen = json.loads(_request(server, "POST", "/", b"{}").read())
    assert seen["hooks"] == ["/snapstart/before", "/snapstart/after"]
    assert seen["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    for spelling in ("/snapstart/after", "/SnapStart//after", "/x/../snapstart/%61fter"):
        assert _request(server, "POST", spelling, b"").status == 403


@requires_namespaces
def test_lwas_other_settings_base_path_authorization_source_error_codes_tcp(
    serve: Any,
) -> None:
    server = serve(
        "settings",
        environment={
            "AWS_LWA_REMOVE_BASE_PATH": "/api",
            "AWS_LWA_AUTHORIZATION_SOURCE": "X-Api-Token",
            "AWS_LWA_ERROR_STATUS_CODES": "418,500-599",
            "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
        },
    )
    seen = json.loads(_request(server, "POST", "/api/echo", b"{}", **{"X-Api-Token": "t0k"}).read())
    assert seen["path"] == "/echo"
    assert seen["headers"]["authorization"] == "t0k"
    assert "x-api-token" not in seen["headers"]
    assert seen["readiness_polls"] == 0  # a TCP connection was the readiness check
    assert _request(server, "GET", "/teapot").status == 502  # the invocation failed


@requires_namespaces
def test_settings_the_stand_in_does_not_implement_fail_the_init_phase(serve: Any) -> None:
    with pytest.raises(InvocationError, match=r"does not implement.*AWS_LWA_ENABLE_COMPRESSION"):
        serve(
            "compressed",
            invoke_mode="BUFFERED",
            environment={"AWS_LWA_INVOKE_MODE": "buffered", "AWS_LWA_ENABLE_COMPRESSION": "true"},
        )


@requires_namespaces
def test_an_app_that_never_gets_ready_fails_the_init_phase(serve: Any) -> None:
    with pytest.raises(Exception, match="readiness"):
        serve(
            "never",
            environment={
                "AWS_LWA_READINESS_CHECK_HEALTHY_STATUS": "299",  # /health answers 200
                "AWS_LWA_READINESS_CHECK_TIMEOUT_SECONDS": "0.5",
            },
        )


def _processes_of(function_name: str) -> list[int]:
    marker = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


@requires_namespaces
def test_a_start_script_that_fails_ends_the_environment_with_its_adapter(serve: Any) -> None:
    with pytest.raises(InvocationError, match="Runtime exited with error: exit status 127"):
        serve("no-start-script", handler="missing.sh")
    deadline = time.monotonic() + 5
    while _processes_of("no-start-script") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_of("no-start-script") == []


def test_the_layer_has_lwas_layout_with_executables() -> None:
    layer = build_layer(Path(os.environ.get("TMPDIR", "/tmp")) / "lwa-layout-test.zip")
    with zipfile.ZipFile(layer) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        bootstrap = archive.read("bootstrap").decode()
    assert modes == {"bootstrap": 0o755, "extensions/lambda-adapter": 0o755}
    assert 'exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"' in bootstrap
