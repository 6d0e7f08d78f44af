"""With log_prompts off, no log line shows a session id, a question, a document or an answer.

Every error code the functions answer is reached through a real Function URL event, with a
marker in the question, in the document and in the model's reply (or in its error); the test
then reads everything the handler wrote (Powertools' JSON lines on stdout, anything on
stderr, every log record) for the marker and the session ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llm_app.errors import ErrorCode
from tests.support.environment import create_history_table
from tests.support.events import function_url_event, lambda_context, response_json
from tests.support.moto import moto_client
from tools.model_server.backend import SageMakerError

MARKER = "Zq7UserTextMarker"
QUESTION = f"What does {MARKER} mean?"
DOCUMENT = f"A {MARKER} is what this document is about. " * 3
REPLY = f"{MARKER} is a marker."
# A caller-chosen session name, and an id of the shape a public URL issues (never issued).
SESSION = "session-Zq7Secret"
UNISSUED = ("Zq7SecretIssued" * 3)[:43]
SECRETS = (MARKER, SESSION, UNISSUED)

TABLE = "privacy-chat-history"
BUCKET = "privacy-documents"


@pytest.fixture
def aws(moto_url: str) -> Iterator[str]:
    """A history table and a documents bucket on the moto server."""
    dynamodb = moto_client("dynamodb", moto_url)
    s3 = moto_client("s3", moto_url)
    create_history_table(dynamodb, TABLE)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=BUCKET, Key=f"{MARKER}.txt", Body=DOCUMENT.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{MARKER}.bin", Body=b"\xff\xfe\x00" + MARKER.encode())
    yield moto_url
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    dynamodb.delete_table(TableName=TABLE)


@pytest.fixture
def unreadable_runtime() -> Iterator[str]:
    """A container that answers 200 with a body quoting the user's text, not a completion."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"choices": [], "generated_text": REPLY}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class World:
    load_handler: Callable[..., Any]
    fake_endpoint: Any
    moto_url: str
    unreadable_runtime: str
    monkeypatch: pytest.MonkeyPatch

    def chat(self, **env: str) -> Any:
        env.setdefault("HISTORY_TABLE_NAME", TABLE)
        return self.load_handler("chat.handler", AWS_ENDPOINT_URL_DYNAMODB=self.moto_url, **env)

    def qa(self, **env: str) -> Any:
        env.setdefault("AWS_ENDPOINT_URL_S3", self.moto_url)
        return self.load_handler("qa.handler", QA_DOCUMENT_BUCKETS=BUCKET, **env)


def post(function: Any, body: object, *, seconds_left: float = 180, **event: Any) -> dict:
    raw = body if isinstance(body, str) else json.dumps(body)
    return function.handler(function_url_event(raw, **event), lambda_context(seconds_left))


def s3_question(key: str) -> dict:
    return {"question": QUESTION, "documents": [f"s3://{BUCKET}/{key}"]}


def broken_chain(*_args: object) -> None:
    try:
        raise ValueError(f"while reading {DOCUMENT}")
    except ValueError:
        # A bug while handling another exception: both messages quote user text.
        raise KeyError(REPLY)  # noqa: B904


def fail_internally(world: World) -> dict:
    qa = world.qa()
    world.monkeypatch.setattr(qa, "answer_documents", broken_chain)
    return post(qa, [QUESTION, [DOCUMENT]])


def slow_reply() -> str:
    time.sleep(1.0)
    return REPLY


# Each error code, reached the way a caller reaches it.
SCENARIOS: dict[ErrorCode, Callable[[World], dict]] = {
    ErrorCode.INVALID_JSON: lambda w: post(w.chat(), f'["{QUESTION}", "{SESSION}"'),
    ErrorCode.INVALID_REQUEST: lambda w: post(
        w.qa(), {"question": QUESTION, "documents": [DOCUMENT], "chain_type": MARKER}
    ),
    ErrorCode.INVALID_SESSION_ID: lambda w: post(w.chat(), [QUESTION, f"{SESSION} {MARKER}"]),
    ErrorCode.UNKNOWN_SESSION: lambda w: post(
        w.chat(URL_AUTHORIZATION_TYPE="NONE"), [QUESTION, UNISSUED], caller=None
    ),
    ErrorCode.NO_CALLER_IDENTITY: lambda w: post(w.chat(), [QUESTION, SESSION], caller=None),
    ErrorCode.METHOD_NOT_ALLOWED: lambda w: post(w.chat(), [QUESTION, SESSION], method="PUT"),
    ErrorCode.REQUEST_TOO_LARGE: lambda w: post(
        w.qa(MAX_BODY_BYTES="1024"), [QUESTION, [DOCUMENT * 20]]
    ),
    ErrorCode.CONTEXT_TOO_LONG: lambda w: post(
        w.qa(), {"question": QUESTION, "documents": [DOCUMENT * 200], "chain_type": "stuff"}
    ),
    ErrorCode.MODEL_UNAVAILABLE: lambda w: (
        w.fake_endpoint.reply(SageMakerError("ThrottlingException", 400, "Rate exceeded")),
        post(w.chat(), [QUESTION, SESSION]),
    )[1],
    ErrorCode.MODEL_PAUSED: lambda w: post(w.chat(ENDPOINT_ENABLED="false"), [QUESTION, SESSION]),
    ErrorCode.ENDPOINT_NOT_FOUND: lambda w: post(
        w.qa(ENDPOINT_NAME="no-such-endpoint"), [QUESTION, [DOCUMENT]]
    ),
    # map_reduce: the first chunk's answer arrives, then the container fails with a sentence
    # that quotes the request.
    ErrorCode.MODEL_ERROR: lambda w: (
        w.fake_endpoint.reply(REPLY, RuntimeError(f"cannot continue '{QUESTION}'")),
        post(
            w.qa(QA_MAP_CONCURRENCY="1"),
            {"question": QUESTION, "documents": [DOCUMENT * 300], "chain_type": "map_reduce"},
        ),
    )[1],
    ErrorCode.MODEL_TIMEOUT: lambda w: (
        w.fake_endpoint.reply(slow_reply),
        post(w.chat(READ_TIMEOUT_SECONDS="0.3"), [QUESTION, SESSION]),
    )[1],
    ErrorCode.BAD_MODEL_OUTPUT: lambda w: post(
        w.chat(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=w.unreadable_runtime), [QUESTION, SESSION]
    ),
    ErrorCode.HISTORY_UNAVAILABLE: lambda w: post(
        w.chat(HISTORY_TABLE_NAME="no-such-table"), [QUESTION, SESSION]
    ),
    ErrorCode.DEADLINE_EXCEEDED: lambda w: post(w.qa(), [QUESTION, [DOCUMENT]], seconds_left=1),
    ErrorCode.DOCUMENT_NOT_ALLOWED: lambda w: post(
        w.qa(), {"question": QUESTION, "documents": [f"s3://other-bucket/{MARKER}.txt"]}
    ),
    ErrorCode.DOCUMENT_NOT_FOUND: lambda w: post(w.qa(), s3_question(f"{MARKER}-missing.txt")),
    ErrorCode.DOCUMENT_UNREADABLE: lambda w: post(w.qa(), s3_question(f"{MARKER}.bin")),
    ErrorCode.DOCUMENT_UNAVAILABLE: lambda w: post(
        w.qa(AWS_ENDPOINT_URL_S3="http://127.0.0.1:9", CONNECT_TIMEOUT_SECONDS="1"),
        s3_question(f"{MARKER}.txt"),
    ),
    ErrorCode.INTERNAL_ERROR: fail_internally,
}


@pytest.fixture
def world(load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch) -> World:
    return World(load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch)


def everything_logged(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    captured = capsys.readouterr()
    records = [json.dumps(record.__dict__, default=str) for record in caplog.records]
    return "\n".join([captured.out, captured.err, *records])


def assert_nothing_secret(logged: str, *secrets: str) -> None:
    assert logged.strip(), "the handler logged nothing: the test would prove nothing"
    for secret in (*SECRETS, *secrets):
        assert secret not in logged, f"{secret!r} reached the logs"


def test_every_error_code_has_a_scenario():
    assert set(SCENARIOS) == set(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda code: code.value)
def test_no_error_path_logs_user_text_or_session_ids(world, code, capsys, caplog):
    response = SCENARIOS[code](world)

    assert response_json(response)["error"]["code"] == code.value, response["body"]
    assert_nothing_secret(everything_logged(capsys, caplog))


@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_answers_and_session_ids_stay_out_of_the_logs(world, capsys, caplog, log_level):
    world.monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", log_level)
    world.fake_endpoint.reply(REPLY, REPLY, REPLY, REPLY)
    chat = world.chat()
    assert post(chat, [QUESTION, SESSION])["statusCode"] == 200
    assert post(chat, [QUESTION, SESSION])["statusCode"] == 200
    forgotten = chat.handler(
        function_url_event(None, method="DELETE", query={"session_id": SESSION}),
        lambda_context(),
    )
    assert response_json(forgotten)["deleted_turns"] == 2
    public = world.chat(URL_AUTHORIZATION_TYPE="NONE")
    issued = response_json(post(public, [QUESTION], caller=None))["session_id"]
    assert post(public, [QUESTION, issued], caller=None)["statusCode"] == 200
    assert post(world.qa(), [QUESTION, [DOCUMENT]])["statusCode"] == 200

    stdout = capsys.readouterr().out
    logged = "\n".join([stdout, everything_logged(capsys, caplog)])

    assert_nothing_secret(logged, issued)
    # A session's requests still share one tag, so its lines can be found together.
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    tags = [line.get("session_tag") for line in lines if line["message"] == "request"]
    assert tags[0] is not None
    assert tags[:3] == [tags[0]] * 3
    assert tags[3] != tags[0]  # the public session's


def test_log_prompts_puts_the_exchange_in_the_log(world, capsys, caplog):
    world.fake_endpoint.reply(REPLY)
    assert post(world.chat(LOG_PROMPTS="true"), [QUESTION, SESSION])["statusCode"] == 200
    assert MARKER in everything_logged(capsys, caplog)
