"""X-Ray tracing of the packaged functions: subsegments when TRACING_ENABLED, nothing otherwise.

Each function runs from its zip and the layer in a fresh interpreter (tools/lambda_sandbox) as
Lambda runs it with tracing Active: LAMBDA_TASK_ROOT, a sampled `_X_AMZN_TRACE_ID`, and the
X-Ray daemon's address. The daemon is a UDP socket on loopback that keeps what it receives:
the X-Ray SDK's real wire format (a JSON header line, then one segment document).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.documents import QUESTION
from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, create_history_table
from tests.support.moto import moto_client
from tests.support.web import SseReader, forwarded, open_stream, start_script, text_of
from tools.lambda_sandbox import artifacts as sandbox

pytestmark = pytest.mark.packaging

TRACE_ID = "1-67890abc-0123456789abcdef01234567"
TRACE_HEADER = f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1"


class XRayDaemon:
    """A UDP socket standing in for the X-Ray daemon: it records the segment documents sent."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)

    @property
    def address(self) -> str:
        host, port = self.socket.getsockname()
        return f"{host}:{port}"

    def documents(self) -> list[dict[str, Any]]:
        received = []
        while True:
            try:
                datagram = self.socket.recv(65536)
            except TimeoutError:
                return received
            header, _, body = datagram.decode("utf-8").partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            received.append(json.loads(body))


@pytest.fixture
def daemon() -> Iterator[XRayDaemon]:
    stand_in = XRayDaemon()
    try:
        yield stand_in
    finally:
        stand_in.socket.close()


def traced_env(base: dict[str, str], task: Path, daemon: XRayDaemon) -> dict[str, str]:
    return {
        **base,
        "TRACING_ENABLED": "true",
        "LAMBDA_TASK_ROOT": str(task),
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
    }


def answer(
    function: str,
    unpacked: sandbox.Unpacked,
    endpoint_url: str,
    home: Path,
    events: list[dict[str, Any]],
    daemon: XRayDaemon | None = None,
    **environment: str,
) -> sandbox.Run:
    """The packaged ``function`` answering ``events``, traced to ``daemon`` if one is given."""
    env = sandbox.lambda_environment(
        endpoint_url,
        home,
        ENDPOINT_NAME=ENDPOINT_NAME,
        MAX_INPUT_TOKENS=str(MAX_INPUT_TOKENS),
        **environment,
    )
    if daemon is not None:
        env = traced_env(env, unpacked.task(function), daemon)
    return sandbox.run_isolated(
        unpacked.sys_path(function), env, handler=sandbox.HANDLERS[function], events=events
    )


def subsegments(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every subsegment sent, nested ones included."""
    found = []
    pending = list(documents)
    while pending:
        document = pending.pop()
        found.append(document)
        pending.extend(document.get("subsegments", []))
    return found


def aws_calls(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (d["name"], d["aws"]["operation"])
        for d in subsegments(documents)
        if d.get("namespace") == "aws" and "operation" in d.get("aws", {})
    }


@pytest.fixture
def history_table(moto_url: str) -> Iterator[str]:
    name = "traced-history"
    dynamodb = moto_client("dynamodb", moto_url)
    create_history_table(dynamodb, name)
    try:
        yield name
    finally:
        dynamodb.delete_table(TableName=name)


@pytest.fixture
def document_bucket(moto_url: str) -> Iterator[str]:
    name = "traced-documents"
    s3 = moto_client("s3", moto_url)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=name, Key="notes.txt", Body=b"Paris is the capital of France.")
    try:
        yield name
    finally:
        s3.delete_object(Bucket=name, Key="notes.txt")
        s3.delete_bucket(Bucket=name)


def test_traced_chat_sends_its_sagemaker_and_dynamodb_calls_as_subsegments(
    unpacked: sandbox.Unpacked, fake_endpoint, moto_url: str, history_table: str, daemon, tmp_path
) -> None:
    run = answer(
        "chat",
        unpacked,
        fake_endpoint.url,
        tmp_path,
        [sandbox.function_url_event()],
        daemon,
        HISTORY_TABLE_NAME=history_table,
        AWS_ENDPOINT_URL_DYNAMODB=moto_url,
    )
    assert run.responses[0]["statusCode"] == 200, run.responses[0]

    documents = daemon.documents()
    assert documents, f"nothing reached the daemon:\n{run.log[-3000:]}"
    assert {d["trace_id"] for d in documents} == {TRACE_ID}
    # Named by the service's endpoint prefix; a new session stores its first turn.
    assert aws_calls(documents) == {
        ("runtime.sagemaker", "InvokeEndpoint"),
        ("dynamodb", "PutItem"),
    }
    [request] = [d for d in subsegments(documents) if d["name"] == "## request"]
    assert request["annotations"] == {"error_code": "none"}


def test_traced_qa_sends_its_s3_read_and_annotates_a_failure(
    unpacked: sandbox.Unpacked, fake_endpoint, moto_url: str, document_bucket: str, daemon, tmp_path
) -> None:
    events = [
        sandbox.function_url_event(json.dumps([QUESTION, [f"s3://{document_bucket}/notes.txt"]])),
        sandbox.function_url_event(json.dumps([QUESTION, [f"s3://{document_bucket}/gone.txt"]])),
    ]
    run = answer(
        "qa",
        unpacked,
        fake_endpoint.url,
        tmp_path,
        events,
        daemon,
        QA_DOCUMENT_BUCKETS=document_bucket,
        AWS_ENDPOINT_URL_S3=moto_url,
    )
    assert [r["statusCode"] for r in run.responses] == [200, 404], run.responses

    documents = daemon.documents()
    assert aws_calls(documents) == {("s3", "GetObject"), ("runtime.sagemaker", "InvokeEndpoint")}
    requests = [d for d in subsegments(documents) if d["name"] == "## request"]
    assert sorted(r["annotations"]["error_code"] for r in requests) == [
        "document_not_found",
        "none",
    ]


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_with_tracing_off_the_xray_sdk_is_never_imported(
    function: str, unpacked: sandbox.Unpacked, fake_endpoint, tmp_path
) -> None:
    run = answer(
        function,
        unpacked,
        fake_endpoint.url,
        tmp_path,
        [sandbox.function_url_event()],
        TRACING_ENABLED="false",
    )
    assert run.responses[0]["statusCode"] == 200
    assert "aws_lambda_powertools.metrics" in run.loaded_modules  # the run did load the app
    assert [m for m in run.loaded_modules if m.startswith(("aws_xray_sdk", "wrapt"))] == []


def test_behind_the_adapter_a_streamed_request_is_traced_under_the_invocations_id(
    unpacked: sandbox.Unpacked, fake_endpoint, daemon, tmp_path
) -> None:
    """Door 2 as deployed with response_streaming: the packaged start script, whose process
    the Lambda runtime does not give `_X_AMZN_TRACE_ID` (the adapter is the runtime client).
    The trace header arrives as the `xray_trace_id` of the adapter's `x-amzn-lambda-context`;
    the streamed model call, and the request's subsegment ended by the body's thread, are
    sent under that trace."""
    env = traced_env(
        sandbox.lambda_environment(
            fake_endpoint.url,
            tmp_path,
            ENDPOINT_NAME=ENDPOINT_NAME,
            MAX_INPUT_TOKENS=str(MAX_INPUT_TOKENS),
            AWS_LWA_INVOKE_MODE="response_stream",
        ),
        unpacked.task("chat"),
        daemon,
    )
    del env["_X_AMZN_TRACE_ID"]
    fake_endpoint.stream_reply(["Paris", " is", " nice."])
    event = sandbox.function_url_event()
    with start_script(unpacked.task("chat"), unpacked.layer, env, tmp_path) as address:
        headers = forwarded(event, trace_header=TRACE_HEADER, accept="text/event-stream")
        events = SseReader(open_stream(address, event["body"], headers)).events()
    assert text_of(events) == "Paris is nice."

    documents = daemon.documents()
    assert {d["trace_id"] for d in documents} == {TRACE_ID}
    assert aws_calls(documents) == {("runtime.sagemaker", "InvokeEndpointWithResponseStream")}
    [request] = [d for d in subsegments(documents) if d["name"] == "## request"]
    assert request["annotations"] == {"error_code": "none"}


# A streamed body is sent by another thread than the one that began the request.
ENDED_ON_ANOTHER_THREAD = """
import threading
from llm_app.runtime import tracing
from llm_app.config import Settings

tracing.start(Settings.from_env())
tracing.request_started()
ender = threading.Thread(target=tracing.request_finished, args=("model_timeout",))
ender.start()
ender.join()
"""


def test_a_request_ended_on_another_thread_is_still_sent_with_its_error_code(
    unpacked: sandbox.Unpacked, fake_endpoint, daemon, tmp_path
) -> None:
    env = traced_env(
        sandbox.lambda_environment(fake_endpoint.url, tmp_path, ENDPOINT_NAME=ENDPOINT_NAME),
        unpacked.task("chat"),
        daemon,
    )
    sandbox.run_isolated(unpacked.sys_path("chat"), env, steps=[("door", ENDED_ON_ANOTHER_THREAD)])

    [request] = [d for d in subsegments(daemon.documents()) if d["name"] == "## request"]
    assert request["annotations"] == {"error_code": "model_timeout"}
    assert request["trace_id"] == TRACE_ID
    assert "end_time" in request
