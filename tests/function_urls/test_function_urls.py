"""The Function URL emulator, on packages built here: events, responses, workers, isolation.

The handler below is packaged into a zip (with a layer zip) exactly like a deployed function,
then served; each test sends real HTTP and reads what the function saw and answered.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.events import load_event
from tools.function_urls.cors import Cors
from tools.function_urls.server import FunctionUrlServer
from tools.lambda_sandbox.events import (
    HttpRequest,
    build_event,
    is_text_content_type,
    map_response,
    request_event,
)
from tools.lambda_sandbox.functions import FunctionSpec, InvocationError

pytestmark = pytest.mark.local

HANDLER_SOURCE = """
import json, os, sys, time, logging
import layered  # from the layer's python/ folder

COUNTER = {"invocations": 0}
logging.getLogger("probe").warning("imported")

def handler(event, context):
    COUNTER["invocations"] += 1
    action = event.get("queryStringParameters", {}).get("do", "echo")
    if action == "raise":
        raise ValueError("boom from the handler")
    if action == "sleep":
        time.sleep(float(event["queryStringParameters"]["seconds"]))
    if action == "exit":
        os._exit(3)
    if action == "plain":
        return [1, "two", {"three": 3}]
    if action == "unserialisable":
        return {"when": object()}
    if action == "custom":
        return {
            "statusCode": 201,
            "headers": {"x-custom": "yes", "content-type": "application/octet-stream"},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "AAEC/w==",
            "isBase64Encoded": True,
        }
    if action == "bad-status":
        return {"statusCode": "two hundred", "body": "x"}
    if action == "print":
        print("hello from print")
        logging.getLogger().warning("hello from logging")
    modules_available = {}
    for name in ("pytest", "boto3", "tools"):
        try:
            __import__(name)
            modules_available[name] = True
        except ImportError:
            modules_available[name] = False
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({
            "event": event,
            "context": {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "log_group_name": context.log_group_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
            "env": dict(os.environ),
            "pid": os.getpid(),
            "invocations": COUNTER["invocations"],
            "layer": layered.VALUE,
            "flags": {"isolated": sys.flags.isolated, "no_site": sys.flags.no_site},
            "sys_path": sys.path,
            "cwd": os.getcwd(),
            "modules": modules_available,
        }),
    }
"""


def build_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("packages")
    return {
        "code": build_zip(folder / "probe.zip", {"probe.py": HANDLER_SOURCE}),
        "layer": build_zip(
            folder / "layer.zip", {"python/layered.py": "VALUE = 'from the layer'\n"}
        ),
        "broken": build_zip(folder / "broken.zip", {"broken.py": "raise KeyError('no config')\n"}),
    }


class Lines:
    """A thread-safe log sink the tests can read."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def matching(self, text: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if text in line]


def spec(packages: dict[str, Path], **overrides: Any) -> FunctionSpec:
    values: dict[str, Any] = {
        "name": "probe-fn",
        "handler": "probe.handler",
        "code_zip": packages["code"],
        "layer_zips": (packages["layer"],),
        "environment": {"GREETING": "hello", "EMPTY": ""},
        "timeout_seconds": 5,
        "memory_mb": 256,
        "region": "eu-west-1",
    }
    values.update(overrides)
    return FunctionSpec(**values)


@pytest.fixture
def serve(
    packages: dict[str, Path], tmp_path: Path
) -> Iterator[Callable[..., tuple[FunctionUrlServer, Lines]]]:
    servers: list[FunctionUrlServer] = []

    def start(cors: Cors | None = None, **overrides: Any) -> tuple[FunctionUrlServer, Lines]:
        lines = Lines()
        server = FunctionUrlServer(
            spec(packages, **overrides),
            base_env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
            work_dir=tmp_path,
            log=lines,
            cors=cors,
        )
        server.start()
        servers.append(server)
        return server, lines

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def probe(serve: Callable[..., tuple[FunctionUrlServer, Lines]]) -> tuple[FunctionUrlServer, Lines]:
    return serve()


def request(
    server: FunctionUrlServer,
    method: str = "POST",
    target: str = "/",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes, list[tuple[str, str]]]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data, response.getheaders()
    finally:
        connection.close()


def probe_call(server: FunctionUrlServer, target: str = "/", **kwargs: Any) -> dict[str, Any]:
    status, _, data, _ = request(server, target=target, **kwargs)
    assert status == 200, data
    return json.loads(data)


# ---------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------
APP = "http://app.example"
PREFLIGHT = {"origin": APP, "access-control-request-method": "POST"}


def test_a_cors_config_answers_preflights_itself_and_sets_every_responses_headers(serve) -> None:
    cors = Cors(
        allow_origins=(APP,),
        allow_methods=("POST",),
        allow_headers=("authorization", "content-type"),
        expose_headers=("retry-after",),
        max_age=60,
    )
    server, _ = serve(cors=cors)

    status, preflight, body, _ = request(server, "OPTIONS", headers=PREFLIGHT)
    answered = request(server, headers={"origin": APP})
    elsewhere = request(server, headers={"origin": "http://other.example"})

    assert (status, body) == (200, b"")
    assert preflight["access-control-allow-origin"] == APP
    assert preflight["access-control-allow-headers"] == "authorization,content-type"
    assert preflight["access-control-max-age"] == "60"
    # The preflight never reached the function: the first invocation is the POST.
    assert json.loads(answered[2])["invocations"] == 1
    assert answered[1]["access-control-allow-origin"] == APP
    assert answered[1]["access-control-expose-headers"] == "retry-after"
    assert "access-control-allow-origin" not in elsewhere[1]


def test_without_a_cors_config_a_preflight_reaches_the_function(probe) -> None:
    server, _ = probe

    status, headers, data, _ = request(server, "OPTIONS", headers=PREFLIGHT)

    assert status == 200
    assert json.loads(data)["event"]["requestContext"]["http"]["method"] == "OPTIONS"
    assert "access-control-allow-origin" not in headers


# ---------------------------------------------------------------------------
# Events (payload format 2.0)
# ---------------------------------------------------------------------------
def test_event_is_payload_format_2_0(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    before = int(time.time() * 1000)
    seen = probe_call(
        server,
        target="/some/path?do=echo&tag=a&tag=b&empty=",
        body=b'["What is the capital of France?"]',
        headers={
            "Content-Type": "application/json",
            "User-Agent": "curl/8.5.0",
            "X-Custom-Header": "Value",
            "Cookie": "session=abc; theme=dark",
        },
    )
    event = seen["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path"
    assert event["rawQueryString"] == "do=echo&tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"do": "echo", "tag": "a,b", "empty": ""}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-custom-header"] == "Value"
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["host"] == f"{server.host}:{server.port}"
    assert all(name == name.lower() for name in event["headers"])
    assert event["body"] == '["What is the capital of France?"]'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/some/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8.5.0",
    }
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert context["domainName"] == f"{server.host}:{server.port}"
    assert before <= context["timeEpoch"] <= int(time.time() * 1000)
    assert context["requestId"] == seen["context"]["aws_request_id"]


def test_no_query_string_means_no_query_parameters(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    event = probe_call(server, body=b"{}", headers={"Content-Type": "application/json"})["event"]
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event


@pytest.mark.parametrize(
    "content_type",
    ["application/octet-stream", "application/x-www-form-urlencoded", None],
)
def test_binary_content_types_arrive_base64_encoded(
    probe: tuple[FunctionUrlServer, Lines], content_type: str | None
) -> None:
    server, _ = probe
    body = b'["What is the capital of France?"]\x00\xff'
    headers = {"Content-Type": content_type} if content_type else {}
    event = probe_call(server, body=body, headers=headers)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_text_content_types() -> None:
    for text in (
        "text/plain",
        "text/html; charset=utf-8",
        "application/json",
        "application/ld+json",
    ):
        assert is_text_content_type(text), text
    for binary in (
        "application/octet-stream",
        "image/png",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=------------------------d74496d66958873e",  # curl -F
        None,
    ):
        assert not is_text_content_type(binary), binary


def test_build_event_is_deterministic_for_given_inputs() -> None:
    headers = [("Host", "example:9001"), ("Accept", "a"), ("accept", "b")]
    event = build_event(
        HttpRequest("GET", "/", headers, b"", "10.0.0.1"),
        request_id="req-1",
        url_id="abc",
        now=1_700_000_000.123,
    )
    assert event["headers"]["accept"] == "a,b"
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["time"] == "14/Nov/2023:22:13:20 +0000"
    assert event["requestContext"]["timeEpoch"] == 1_700_000_000_123
    assert event["requestContext"]["apiId"] == "abc"


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------
def test_result_without_status_code_is_a_json_200(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    status, headers, data, _ = request(server, target="/?do=plain")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(data) == [1, "two", {"three": 3}]


def test_status_headers_cookies_and_base64_body_are_mapped(
    probe: tuple[FunctionUrlServer, Lines],
) -> None:
    server, _ = probe
    status, headers, data, raw_headers = request(server, target="/?do=custom")
    assert status == 201
    assert headers["x-custom"] == "yes"
    assert headers["content-type"] == "application/octet-stream"
    assert [v for k, v in raw_headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2"]
    assert data == b"\x00\x01\x02\xff"
    assert headers["x-amzn-RequestId"]


def test_map_response_defaults_and_errors() -> None:
    plain = map_response(json.dumps({"statusCode": 204}))
    assert (plain.status, plain.body) == (204, b"")
    assert ("Content-Type", "application/json") in plain.headers
    assert map_response('"hello"').body == b'"hello"'
    assert map_response("null").status == 200


@pytest.mark.parametrize("action", ["bad-status", "unserialisable"])
def test_unmappable_results_are_502(probe: tuple[FunctionUrlServer, Lines], action: str) -> None:
    server, lines = probe
    status, _, data, _ = request(server, target=f"/?do={action}")
    assert (status, data) == (502, b"Internal Server Error")
    expected = (
        "statusCode must be an HTTP status" if action == "bad-status" else "Runtime.MarshalError"
    )
    assert lines.matching(expected)


# ---------------------------------------------------------------------------
# The execution environment
# ---------------------------------------------------------------------------
def test_context_and_environment_are_lambdas(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    os.environ["LOCAL_TEST_LEAK_CHECK"] = "must not reach the function"
    try:
        seen = probe_call(server)
    finally:
        del os.environ["LOCAL_TEST_LEAK_CHECK"]
    context = seen["context"]
    assert context["function_name"] == "probe-fn"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"  # a string, as in the real runtime
    assert (
        context["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:probe-fn"
    )
    assert context["log_group_name"] == "/aws/lambda/probe-fn"
    assert 0 < context["remaining_ms"] <= 5000
    env = seen["env"]
    assert env["GREETING"] == "hello"
    assert env["EMPTY"] == ""
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe-fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["_HANDLER"] == "probe.handler"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_CONFIG_FILE"] == os.devnull
    assert "LOCAL_TEST_LEAK_CHECK" not in env
    assert seen["cwd"] == env["LAMBDA_TASK_ROOT"]


def test_only_the_artifacts_and_the_standard_library_are_importable(
    probe: tuple[FunctionUrlServer, Lines],
) -> None:
    server, _ = probe
    seen = probe_call(server)
    assert seen["flags"] == {"isolated": 1, "no_site": 1}
    assert seen["layer"] == "from the layer"
    assert seen["modules"] == {
        "pytest": False,
        "boto3": False,
        "tools": False,
    }
    task_root = seen["env"]["LAMBDA_TASK_ROOT"]
    assert seen["sys_path"][0] == task_root
    assert seen["sys_path"][2].endswith(os.path.join("opt", "python"))
    assert not any("site-packages" in p for p in seen["sys_path"][3:])


def test_a_warm_worker_serves_later_requests(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, lines = probe
    first, second = probe_call(server), probe_call(server)
    assert second["pid"] == first["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert len(lines.matching("cold start: init")) == 1


def test_function_output_is_relayed_with_its_name(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, lines = probe
    request(server, target="/?do=print")
    # The relayed output and the access line (written once the answer is sent) may trail it.
    expected = ("hello from logging", "probe-fn POST /?do=print 200 ")
    deadline = time.monotonic() + 5
    while not all(map(lines.matching, expected)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines.matching("[probe-fn] hello from print")
    logged = lines.matching("hello from logging")[0]
    # Lambda's text format: level, timestamp, request id, message.
    assert logged.startswith("[probe-fn] [WARNING]\t")
    assert logged.count("\t") == 3
    access = lines.matching("probe-fn POST /?do=print 200 ")
    assert len(access) == 1
    assert access[0].endswith(" ms")


# ---------------------------------------------------------------------------
# Failures: handler errors, timeouts, crashes, init errors
# ---------------------------------------------------------------------------
def test_handler_error_is_502_and_logged_and_the_worker_stays_warm(
    probe: tuple[FunctionUrlServer, Lines],
) -> None:
    server, lines = probe
    before = probe_call(server)
    status, headers, data, _ = request(server, target="/?do=raise")
    assert (status, data) == (502, b"Internal Server Error")
    failure = lines.matching("invocation failed")[0]
    document = json.loads(failure.split("invocation failed: ", 1)[1])
    assert document["errorType"] == "ValueError"
    assert document["errorMessage"] == "boom from the handler"
    assert document["requestId"] == headers["x-amzn-RequestId"]
    assert any("probe.py" in frame for frame in document["stackTrace"])
    assert probe_call(server)["pid"] == before["pid"]


def test_timeout_kills_the_worker_and_the_next_request_gets_a_new_one(
    serve: Callable[..., tuple[FunctionUrlServer, Lines]],
) -> None:
    server, lines = serve(timeout_seconds=1)
    before = probe_call(server)
    started = time.monotonic()
    status, _, data, _ = request(server, target="/?do=sleep&seconds=30")
    elapsed = time.monotonic() - started
    assert (status, data) == (502, b"Internal Server Error")
    assert 1.0 <= elapsed < 5
    assert lines.matching("Task timed out after 1.00 seconds")
    with pytest.raises(ProcessLookupError):
        os.kill(before["pid"], 0)
    after = probe_call(server)
    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1  # a fresh execution environment


def test_a_crashing_worker_is_replaced(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, lines = probe
    before = probe_call(server)
    status, _, _, _ = request(server, target="/?do=exit")
    assert status == 502
    assert lines.matching("Runtime exited with error: exit status 3")
    assert probe_call(server)["pid"] != before["pid"]


def test_init_errors_are_lambdas(packages: dict[str, Path], tmp_path: Path) -> None:
    cases = {
        "broken.handler": ("KeyError", "'no config'"),
        "missing_module.handler": (
            "Runtime.ImportModuleError",
            "Unable to import module 'missing_module': No module named 'missing_module'",
        ),
        "probe.nothing_here": (
            "Runtime.HandlerNotFound",
            "Handler 'nothing_here' missing on module 'probe'",
        ),
        "nodots": ("Runtime.MalformedHandlerName", "Bad handler 'nodots'"),
    }
    for handler, (error_type, message) in cases.items():
        code = packages["broken"] if handler.startswith("broken") else packages["code"]
        server = FunctionUrlServer(
            spec(packages, handler=handler, code_zip=code), work_dir=tmp_path, log=Lines()
        )
        try:
            with pytest.raises(InvocationError) as caught:
                server.start(warm=True)
            assert caught.value.document["errorType"] == error_type
            assert caught.value.document["errorMessage"].startswith(message)
        finally:
            server.stop()


def test_an_init_error_answers_502_on_each_request(
    serve: Callable[..., tuple[FunctionUrlServer, Lines]], packages: dict[str, Path]
) -> None:
    server, lines = serve(handler="broken.handler", code_zip=packages["broken"])
    assert request(server)[0] == 502
    assert request(server)[0] == 502
    assert len(lines.matching('"errorType": "KeyError"')) == 2  # init retried, as Lambda does


# ---------------------------------------------------------------------------
# Auth, limits, concurrency, shutdown
# ---------------------------------------------------------------------------
def test_aws_iam_urls_need_a_sigv4_signature(
    serve: Callable[..., tuple[FunctionUrlServer, Lines]],
) -> None:
    server, _ = serve(auth_type="AWS_IAM")
    body = b'["What is the capital of France?"]'
    status, _, data, _ = request(server, body=body)
    assert (status, json.loads(data)) == (403, {"Message": "Forbidden"})

    url = f"http://{server.host}:{server.port}/"
    signed = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "token"), "lambda", "eu-west-1").add_auth(signed)
    status, _, data, _ = request(server, body=body, headers=dict(signed.headers.items()))
    assert status == 200
    event = json.loads(data)["event"]
    assert event["body"] == body.decode()
    # The signing key stands for the caller, so two local keys are two principals.
    caller = event["requestContext"]["authorizer"]["iam"]
    assert caller["accessKey"] == "AKIDEXAMPLE"
    assert caller["userArn"] == "arn:aws:iam::123456789012:user/AKIDEXAMPLE"
    assert caller["userId"] == "AIDALOCALAKIDEXAMPLE"


def test_public_urls_report_no_caller(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    status, _, data, _ = request(server, body=b"[]")
    assert status == 200
    context = json.loads(data)["event"]["requestContext"]
    assert "authorizer" not in context
    assert context["accountId"] == "anonymous"


def test_payloads_over_6_mb_are_refused(probe: tuple[FunctionUrlServer, Lines]) -> None:
    server, _ = probe
    status, _, data, _ = request(server, body=b"x" * (6 * 1024 * 1024 + 1))
    assert status == 413
    assert "Request must be smaller than 6291456 bytes" in json.loads(data)["Message"]


def test_concurrent_requests_run_in_parallel_workers(
    probe: tuple[FunctionUrlServer, Lines],
) -> None:
    server, _ = probe
    results: list[int] = []

    def slow() -> None:
        results.append(request(server, target="/?do=sleep&seconds=1")[0])

    threads = [threading.Thread(target=slow) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [200, 200]
    assert time.monotonic() - started < 1.9  # two execution environments, not one after another


def test_stop_ends_every_worker_and_removes_the_unpacked_code(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    server = FunctionUrlServer(spec(packages), work_dir=tmp_path, log=Lines())
    server.start(warm=True)
    pids = server.function.worker_pids
    task_root = server.function.task_root
    assert pids
    assert task_root.is_dir()
    server.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not task_root.exists()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(server.host, server.port, timeout=5).request("GET", "/")


def test_reserved_variables_cannot_be_set(packages: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="reserved environment variables"):
        spec(packages, environment={"AWS_LAMBDA_FUNCTION_NAME": "x"})


@pytest.mark.parametrize("saved", ["function_url_post", "function_url_delete_query"])
def test_the_event_builder_writes_what_aws_sends(saved: str) -> None:
    real = load_event(saved)
    method = real["requestContext"]["http"]["method"]
    built = request_event(
        real.get("body"),
        method=method,
        query=real.get("queryStringParameters"),
        content_type=real["headers"].get("content-type"),
        base64_body=real["isBase64Encoded"],
        iam=real["requestContext"]["authorizer"]["iam"],
    )

    assert built.keys() == real.keys()
    assert built["headers"].keys() >= real["headers"].keys() - {
        "x-amzn-tls-version",
        "x-amzn-tls-cipher-suite",
    }
    context = real["requestContext"]
    assert built["requestContext"].keys() == context.keys()
    assert built["requestContext"]["authorizer"] == context["authorizer"]
    assert built["requestContext"]["accountId"] == context["accountId"]
    assert built["requestContext"]["http"] == context["http"]
    assert (built["rawPath"], built["rawQueryString"]) == (real["rawPath"], real["rawQueryString"])
