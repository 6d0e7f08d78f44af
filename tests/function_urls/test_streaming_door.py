"""The packaged chat function behind the local adapter and Function URL, as Lambda runs it.

The built chat.zip and layer.zip, with the adapter stand-in's layer, in an execution
environment of the Lambda sandbox: Lambda's environment variables and the function's own,
nothing from this shell (tools.lambda_sandbox.functions.function_env). Each test is a user's
request over HTTP, and reads what the user and the operator would see: the stream, the stored
turn, the function's log while its environment still runs.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.function_urls.test_web_adapter import requires_namespaces
from tests.support.emf import emf_problems, emf_records, metric_values
from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, create_history_table
from tests.support.moto import moto_client
from tests.support.web import SseReader, open_stream, text_of
from tools.function_urls.server import FunctionUrlServer
from tools.lambda_sandbox.functions import FunctionSpec, InvocationError
from tools.lambda_sandbox.web_adapter import build_layer
from tools.packaging.build import start_script

pytestmark = [pytest.mark.local, requires_namespaces]

REGION = "eu-west-1"
TABLE = "streaming-door-history"
ACCESS_KEY = "AKIDSTREAM"
# A SigV4 Authorization header: the local AWS_IAM URL names its access key as the caller.
SIGNED = {
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/lambda/"
    "aws4_request, SignedHeaders=host, Signature=0",
}
OWNER = f"iam:123456789012:AIDALOCAL{ACCESS_KEY}"  # the caller tools.lambda_sandbox reports


class Log(list[str]):
    def emf(self) -> list[dict[str, Any]]:
        """The EMF documents among the function's lines (``[name] {...}``)."""
        return emf_records(line.partition("] ")[2] for line in self)


@pytest.fixture(scope="module")
def adapter_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_layer(tmp_path_factory.mktemp("adapter") / "adapter.zip")


def chat_spec(built: Path, adapter_layer: Path, code_zip: Path | None = None, **environment: str):
    """The chat function as the root module deploys it (SnapStart: the init runs at publish)."""
    return FunctionSpec(
        name="chat",
        handler="run.sh",
        code_zip=code_zip or built / "chat.zip",
        layer_zips=(built / "layer.zip", adapter_layer),
        environment={
            "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
            "AWS_LWA_INVOKE_MODE": "response_stream",
            "ENDPOINT_NAME": ENDPOINT_NAME,
            "MAX_INPUT_TOKENS": str(MAX_INPUT_TOKENS),
            "MAX_ATTEMPTS": "1",
            "HISTORY_TABLE_NAME": TABLE,
            "POWERTOOLS_SERVICE_NAME": "chat",
            "POWERTOOLS_METRICS_NAMESPACE": "StreamingDoor",
            **environment,
        },
        timeout_seconds=60.0,
        memory_mb=1024,
        region=REGION,
        auth_type="AWS_IAM",
        invoke_mode="RESPONSE_STREAM",
        snap_start=True,
    )


def serve(spec: FunctionSpec, work_dir: Path, log: Log) -> FunctionUrlServer:
    """The URL with one environment, warmed: its init runs now, as at publish time."""
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = FunctionUrlServer(
        spec, work_dir=work_dir, log=log.append, max_concurrency=1, base_env=credentials
    )
    try:
        return server.start(warm=True)
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="module")
def chat_door(
    built_artifacts: Path,
    adapter_layer: Path,
    _endpoint_server,
    moto_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FunctionUrlServer, Log]]:
    """The packaged chat function's streaming URL, with its history table on moto."""
    create_history_table(moto_client("dynamodb", moto_url, REGION), TABLE)
    spec = chat_spec(
        built_artifacts,
        adapter_layer,
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=_endpoint_server.url,
        AWS_ENDPOINT_URL_DYNAMODB=moto_url,
    )
    log = Log()  # the function's lines and the URL's, as CloudWatch would hold them
    server = serve(spec, tmp_path_factory.mktemp("door"), log)
    yield server, log
    server.stop()


def ask(server: FunctionUrlServer, question: str, session: str) -> SseReader:
    body = json.dumps([question, session])
    headers = {**SIGNED, "content-type": "application/json", "accept": "text/event-stream"}
    return SseReader(open_stream(f"{server.host}:{server.port}", body, headers))


def wait_for(found: Callable[[], Any], what: str) -> Any:
    """What ``found`` returns once it is truthy; fails, rather than hangs, if it never is."""
    deadline = time.monotonic() + 30
    while not (value := found()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
    return value


def test_one_requests_metrics_are_in_the_log_while_its_environment_runs(
    chat_door: tuple[FunctionUrlServer, Log], fake_endpoint
) -> None:
    server, log = chat_door
    log.clear()
    (environment,) = server.function.worker_pids
    fake_endpoint.stream_reply(["Paris", " is", " nice."])

    assert text_of(ask(server, "What is the capital of France?", "session-metrics").events()) == (
        "Paris is nice."
    )

    # Written with print() by Powertools: without -u in run.sh they would wait in the
    # interpreter's buffer for a later line or the environment's end.
    counted = wait_for(
        lambda: metric_values(log.emf(), "Requests", status_class="2xx"),
        "the request's EMF line in the log",
    )
    assert server.function.worker_pids == [environment]  # the same environment, still up
    assert counted == [1]
    records = log.emf()
    assert all(emf_problems(record) == [] for record in records)
    assert metric_values(records, "OutputTokens")[0] > 0


def test_a_dropped_stream_runs_to_its_end_and_chat_stores_the_turn(
    chat_door: tuple[FunctionUrlServer, Log], fake_endpoint, moto_url: str
) -> None:
    """Lambda does not stop a stream whose client has gone, so the app never learns of it:
    the model generates to its end (bounded by max_new_tokens and the function's timeout)
    and the turn is stored, as if the client had read it all."""
    server, log = chat_door
    (environment,) = server.function.worker_pids
    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], gated=True)
    reader = ask(server, "What is the capital of France?", "session-dropped")
    first = reader.next_event()
    assert first is not None
    assert "Paris" in first[1]
    reader.response.close()  # the user closes the tab
    gate.open()  # the model generates on, for nobody

    history = moto_client("dynamodb", moto_url, REGION)

    def stored() -> list[dict[str, Any]]:
        return history.query(
            TableName=TABLE,
            KeyConditionExpression="session_id = :s",
            ExpressionAttributeValues={":s": {"S": f"{OWNER}#session-dropped"}},
        )["Items"]

    turns = wait_for(stored, "the dropped stream's turn in the history table")
    assert "Paris is nice." in json.dumps(turns)
    assert gate.sent == 4  # three tokens and the end: generated to the end
    assert server.function.worker_pids == [environment]
    assert any("the client went away" in line for line in log)


def test_a_start_that_fails_fails_the_init_with_the_apps_error(
    built_artifacts: Path, adapter_layer: Path, tmp_path: Path
) -> None:
    log = Log()
    with pytest.raises(InvocationError, match="Runtime exited"):
        serve(chat_spec(built_artifacts, adapter_layer, ENDPOINT_NAME=""), tmp_path, log)
    assert any("ENDPOINT_NAME is not set" in line for line in log)


def test_a_start_that_never_gets_ready_fails_the_init_with_the_apps_stack(
    built_artifacts: Path, adapter_layer: Path, tmp_path: Path
) -> None:
    """The adapter would wait for readiness until Lambda's own init limit; the start script
    stops the app after START_TIMEOUT_SECONDS, so the init ends with the runtime's exit (not
    the sandbox's init timeout, which this function's 60 s would put later)."""
    code = tmp_path / "stuck.zip"
    with zipfile.ZipFile(code, "w") as archive:
        script = zipfile.ZipInfo("run.sh")
        script.external_attr = 0o100755 << 16
        archive.writestr(script, start_script("chat"))
        archive.writestr("llm_app/__init__.py", "")
        archive.writestr("llm_app/http/__init__.py", "")
        # An init that never ends, e.g. a call without a timeout at import time.
        archive.writestr(
            "llm_app/http/server.py",
            "import time\n\ndef wait_forever():\n"
            "    while True:\n        time.sleep(1)\n\nwait_forever()\n",
        )
    log = Log()
    spec = chat_spec(built_artifacts, adapter_layer, code, START_TIMEOUT_SECONDS="1")
    with pytest.raises(InvocationError, match="Runtime exited"):
        serve(spec, tmp_path, log)
    assert any("(START_TIMEOUT_SECONDS): stopping it" in line for line in log)
    assert any(
        "in wait_forever" in line for line in log
    )  # faulthandler's dump: where the start hung
