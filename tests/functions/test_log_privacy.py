"""With log_prompts off, no log line shows a session id, a question, a document or an answer.

Every error code the functions answer is reached through both front doors, with a marker in
the question, in the document and in the model's reply (or in its error): door 1, the
buffered handler, gets a real Function URL event; door 2, the ASGI app behind the Lambda Web
Adapter, gets the same request over HTTP with the adapter's headers, asking for a stream
(Server-Sent Events), so errors after the first byte are covered too. The test then reads
everything the function wrote (Powertools' JSON lines on stdout, anything on stderr, every
log record) for the marker and the session ids.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from llm_app.errors import ErrorCode
from llm_app.http.web import FunctionApp
from llm_app.model.answer import Answer, Item, Text
from tests.support.canned_http import Canned, answering
from tests.support.environment import create_history_table
from tests.support.events import function_url_event, lambda_context, response_json
from tests.support.moto import api_keys_table, moto_client
from tests.support.web import adapter_headers, free_port, parse_sse, send, serving
from tools.api_keys.store import create_key
from tools.model_server import eventstream
from tools.model_server.backend import SageMakerError
from tools.model_server.scripted_backend import ScriptedStream
from tools.model_server.server import EVENT_STREAM_CONTENT_TYPE

MARKER = "Zq7UserTextMarker"
QUESTION = f"What does {MARKER} mean?"
DOCUMENT = f"A {MARKER} is what this document is about. " * 3
REPLY = f"{MARKER} is a marker."
# A caller-chosen session name, and an id of the shape a public URL issues (never issued).
SESSION = "session-Zq7Secret"
UNISSUED = ("Zq7SecretIssued" * 3)[:43]
# Bearers: a key of the right shape that no one created, and a JWT no issuer could check.
WRONG_KEY = "llmk_" + (MARKER * 3)[:43]
UNCHECKABLE_TOKEN = ".".join(
    base64.urlsafe_b64encode(part).rstrip(b"=").decode()
    for part in (json.dumps({"alg": "RS256", "kid": MARKER}).encode(), MARKER.encode(), b"sig")
)
SECRETS = (MARKER, SESSION, UNISSUED)

TABLE = "privacy-chat-history"
KEYS_TABLE = "privacy-api-keys"
BUCKET = "privacy-documents"
SSE = "text/event-stream"
BUFFERED, STREAMING = "door1", "door2"


@pytest.fixture
def aws(moto_url: str) -> Iterator[str]:
    """A history table and a documents bucket on the moto server."""
    dynamodb = moto_client("dynamodb", moto_url)
    s3 = moto_client("s3", moto_url)
    create_history_table(dynamodb, TABLE)
    keys_table = ExitStack()
    keys_table.enter_context(api_keys_table(dynamodb, KEYS_TABLE))
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=BUCKET, Key=f"{MARKER}.txt", Body=DOCUMENT.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{MARKER}.bin", Body=b"\xff\xfe\x00" + MARKER.encode())
    yield moto_url
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    dynamodb.delete_table(TableName=TABLE)
    keys_table.close()


@pytest.fixture
def unreadable_runtime() -> Iterator[str]:
    """A container that answers 200 with a body quoting the user's text, not a completion;
    streamed, one good token, then a line that is not a completion chunk."""

    def respond(path: str) -> Canned:
        if path.endswith("/invocations-response-stream"):
            token = {"choices": [{"index": 0, "delta": {"content": "It"}}]}
            lines = f"data: {json.dumps(token)}\n\ndata: {REPLY}\n\n".encode()
            return Canned(200, EVENT_STREAM_CONTENT_TYPE, eventstream.payload_part(lines))
        body = json.dumps({"choices": [], "generated_text": REPLY}).encode()
        return Canned(200, "application/json", body)

    with answering(respond) as url:
        yield url


@dataclass
class World:
    load_handler: Callable[..., Any]
    fake_endpoint: Any
    moto_url: str
    unreadable_runtime: str
    monkeypatch: pytest.MonkeyPatch
    door: str = BUFFERED

    def chat(self, **env: str) -> Any:
        env.setdefault("HISTORY_TABLE_NAME", TABLE)
        return self.load("chat.handler", AWS_ENDPOINT_URL_DYNAMODB=self.moto_url, **env)

    def signed_chat(self, **env: str) -> Any:
        """Chat behind API keys (a bearer mode: a NONE URL)."""
        return self.chat(URL_AUTHORIZATION_TYPE="NONE", API_KEYS_TABLE_NAME=KEYS_TABLE, **env)

    def qa(self, **env: str) -> Any:
        env.setdefault("AWS_ENDPOINT_URL_S3", self.moto_url)
        return self.load("qa.handler", QA_DOCUMENT_BUCKETS=BUCKET, **env)

    def load(self, module: str, **env: str) -> Any:
        if self.door == STREAMING:  # as Terraform sets it with response_streaming = true
            env.setdefault("AWS_LWA_INVOKE_MODE", "response_stream")
        return self.load_handler(module, **env)

    def post(self, function: Any, body: object, *, seconds_left: float = 180, **event: Any) -> dict:
        """The response to one request through this world's door, as a Function URL's."""
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        if self.door == BUFFERED:
            return function.handler(function_url_event(raw, **event), lambda_context(seconds_left))
        return through_the_adapter(function, raw, seconds_left=seconds_left, **event)


def through_the_adapter(
    function: Any, body: str | None, *, seconds_left: float, accept: str = SSE, **event: Any
) -> dict:
    """Door 2 over HTTP, as the Lambda Web Adapter forwards the URL's request; a stream asked."""
    url_event = function_url_event(body, accept=accept, **event)
    headers = {
        **{k: v for k, v in url_event["headers"].items() if k not in ("host", "content-length")},
        **adapter_headers(url_event, seconds_left=seconds_left),
    }
    query = url_event["rawQueryString"]
    app = FunctionApp(function.ROUTES, function.SETTINGS, function.logger, function.SIGN_IN)
    with serving(app) as address:
        reply = send(
            address,
            url_event.get("body"),
            headers,
            method=url_event["requestContext"]["http"]["method"],
            path=f"/?{query}" if query else "/",
        )
    return {"statusCode": reply.status, "headers": reply.headers, "body": reply.body.decode()}


def error_of(response: dict) -> dict:
    """The error a caller got: the JSON body, or a stream's last event after its first byte."""
    if response["headers"]["content-type"].startswith(SSE):
        assert response["statusCode"] == 200
        _name, data = parse_sse(response["body"].encode())[-1]
        return json.loads(data)["error"]
    return response_json(response)["error"]


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
    world.monkeypatch.setattr(qa, "answer_question", broken_chain)
    return world.post(qa, [QUESTION, [DOCUMENT]])


def over_quota(world: World) -> dict:
    """A key's second request of a day whose tokens the first used up."""
    name = f"privacy-{world.door}"
    key = create_key(
        moto_client("dynamodb", world.moto_url), KEYS_TABLE, name, datetime.now(UTC), daily_tokens=1
    ).key
    chat = world.signed_chat()
    world.post(chat, [QUESTION], caller=None, authorization=f"Bearer {key}")
    return world.post(chat, [QUESTION], caller=None, authorization=f"Bearer {key}")


def issuer_down(world: World) -> dict:
    """Tokens, and the issuer's keys cannot be read: nothing listens where it says it is."""
    chat = world.chat(
        URL_AUTHORIZATION_TYPE="NONE",
        JWT_ISSUER=f"http://127.0.0.1:{free_port()}",
        JWT_AUDIENCES="web-app",
    )
    return world.post(chat, [QUESTION], caller=None, authorization=f"Bearer {UNCHECKABLE_TOKEN}")


def slow_reply() -> str:
    time.sleep(1.0)
    return REPLY


# Each error code, reached the way a caller reaches it.
SCENARIOS: dict[ErrorCode, Callable[[World], dict]] = {
    ErrorCode.INVALID_JSON: lambda w: w.post(w.chat(), f'["{QUESTION}", "{SESSION}"'),
    ErrorCode.INVALID_REQUEST: lambda w: w.post(
        w.qa(), {"question": QUESTION, "documents": [DOCUMENT], "chain_type": MARKER}
    ),
    ErrorCode.INVALID_SESSION_ID: lambda w: w.post(w.chat(), [QUESTION, f"{SESSION} {MARKER}"]),
    ErrorCode.UNKNOWN_SESSION: lambda w: w.post(
        w.chat(URL_AUTHORIZATION_TYPE="NONE"), [QUESTION, UNISSUED], caller=None
    ),
    ErrorCode.NO_CALLER_IDENTITY: lambda w: w.post(w.chat(), [QUESTION, SESSION], caller=None),
    ErrorCode.UNAUTHORIZED: lambda w: w.post(
        w.signed_chat(), [QUESTION, SESSION], caller=None, authorization=f"Bearer {WRONG_KEY}"
    ),
    ErrorCode.QUOTA_EXCEEDED: over_quota,
    ErrorCode.SIGN_IN_UNAVAILABLE: issuer_down,
    ErrorCode.METHOD_NOT_ALLOWED: lambda w: w.post(w.chat(), [QUESTION, SESSION], method="PUT"),
    ErrorCode.REQUEST_TOO_LARGE: lambda w: w.post(
        w.qa(MAX_BODY_BYTES="1024"), [QUESTION, [DOCUMENT * 20]]
    ),
    ErrorCode.CONTEXT_TOO_LONG: lambda w: w.post(
        w.qa(), {"question": QUESTION, "documents": [DOCUMENT * 200], "chain_type": "stuff"}
    ),
    ErrorCode.MODEL_UNAVAILABLE: lambda w: (
        w.fake_endpoint.reply(SageMakerError("ThrottlingException", 400, "Rate exceeded")),
        w.post(w.chat(), [QUESTION, SESSION]),
    )[1],
    ErrorCode.MODEL_PAUSED: lambda w: w.post(w.chat(ENDPOINT_ENABLED="false"), [QUESTION, SESSION]),
    ErrorCode.ENDPOINT_NOT_FOUND: lambda w: w.post(
        w.qa(ENDPOINT_NAME="no-such-endpoint"), [QUESTION, [DOCUMENT]]
    ),
    # map_reduce: the first chunk's answer arrives, then the container fails with a sentence
    # that quotes the request.
    ErrorCode.MODEL_ERROR: lambda w: (
        w.fake_endpoint.reply(REPLY, RuntimeError(f"cannot continue '{QUESTION}'")),
        w.post(
            w.qa(QA_MAP_CONCURRENCY="1"),
            {"question": QUESTION, "documents": [DOCUMENT * 300], "chain_type": "map_reduce"},
        ),
    )[1],
    ErrorCode.MODEL_TIMEOUT: lambda w: (
        w.fake_endpoint.reply(slow_reply),
        w.post(w.chat(READ_TIMEOUT_SECONDS="0.3"), [QUESTION, SESSION]),
    )[1],
    ErrorCode.BAD_MODEL_OUTPUT: lambda w: w.post(
        w.chat(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=w.unreadable_runtime), [QUESTION, SESSION]
    ),
    ErrorCode.HISTORY_UNAVAILABLE: lambda w: w.post(
        w.chat(HISTORY_TABLE_NAME="no-such-table"), [QUESTION, SESSION]
    ),
    ErrorCode.DEADLINE_EXCEEDED: lambda w: w.post(w.qa(), [QUESTION, [DOCUMENT]], seconds_left=1),
    ErrorCode.DOCUMENT_NOT_ALLOWED: lambda w: w.post(
        w.qa(), {"question": QUESTION, "documents": [f"s3://other-bucket/{MARKER}.txt"]}
    ),
    ErrorCode.DOCUMENT_NOT_FOUND: lambda w: w.post(w.qa(), s3_question(f"{MARKER}-missing.txt")),
    ErrorCode.DOCUMENT_UNREADABLE: lambda w: w.post(w.qa(), s3_question(f"{MARKER}.bin")),
    ErrorCode.DOCUMENT_UNAVAILABLE: lambda w: w.post(
        w.qa(AWS_ENDPOINT_URL_S3="http://127.0.0.1:9", CONNECT_TIMEOUT_SECONDS="1"),
        s3_question(f"{MARKER}.txt"),
    ),
    ErrorCode.INTERNAL_ERROR: fail_internally,
}


def fail_mid_stream(world: World) -> dict:
    """A bug after the first byte: its exception (and its cause) quote user text."""
    qa = world.qa()

    def half_an_answer(*_args: object, **_kwargs: object) -> Answer:
        def parts() -> Iterator[Item]:
            yield Text("It")
            broken_chain()

        return Answer(parts(), streamed=True)

    world.monkeypatch.setattr(qa, "answer_question", half_an_answer)
    return world.post(qa, [QUESTION, [DOCUMENT]])


def broken_stream(**failure: Any) -> Callable[[World], dict]:
    """The container fails after two tokens of the reply, its error quoting the question."""

    def scenario(world: World) -> dict:
        world.fake_endpoint.reply(
            ScriptedStream(
                (MARKER, " is", " a", " marker."),
                fail_after=2,
                message=f"cannot continue '{QUESTION}'",
                **failure,
            )
        )
        return world.post(world.chat(), [QUESTION, SESSION])

    return scenario


# Door 2 only: errors once the stream has begun (status 200 sent), each the stream's last event
# (besides SCENARIOS' model_error and bad_model_output, which door 2 also reaches mid-stream).
MID_STREAM: dict[str, tuple[ErrorCode, Callable[[World], dict]]] = {
    "model_stream_error": (ErrorCode.MODEL_ERROR, broken_stream()),
    "engine_error_event": (ErrorCode.MODEL_ERROR, broken_stream(engine_error=True)),
    "unhandled_exception": (ErrorCode.INTERNAL_ERROR, fail_mid_stream),
}


@pytest.fixture(params=[BUFFERED, STREAMING])
def world(request, load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch) -> World:
    return World(load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch, request.param)


@pytest.fixture
def door2(load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch) -> World:
    return World(load_handler, fake_endpoint, aws, unreadable_runtime, monkeypatch, STREAMING)


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

    assert error_of(response)["code"] == code.value, response["body"]
    assert_nothing_secret(everything_logged(capsys, caplog))


@pytest.mark.parametrize("case", list(MID_STREAM))
def test_no_failure_after_the_first_byte_logs_user_text(door2, case, capsys, caplog):
    code, scenario = MID_STREAM[case]
    response = scenario(door2)

    events = parse_sse(response["body"].encode())
    assert "choices" in json.loads(events[0][1]), "the stream failed before its first byte"
    assert error_of(response)["code"] == code.value, response["body"]
    logged = everything_logged(capsys, caplog)
    assert_nothing_secret(logged)
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("message") == "request")
    assert (request["streamed"], request["error_code"]) == (True, code.value)


def session_of(response: dict) -> str:
    """The session a chat answer names: the JSON's field, or a stream's x-session-id header."""
    if response["headers"]["content-type"].startswith(SSE):
        return str(response["headers"]["x-session-id"])
    return str(response_json(response)["session_id"])


@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_answers_and_session_ids_stay_out_of_the_logs(world, capsys, caplog, log_level):
    world.monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", log_level)
    world.fake_endpoint.reply(*[REPLY] * 5)
    chat = world.chat()
    assert world.post(chat, [QUESTION, SESSION])["statusCode"] == 200
    assert world.post(chat, [QUESTION, SESSION], accept="text/plain")["statusCode"] == 200
    forgotten = world.post(chat, None, method="DELETE", query={"session_id": SESSION})
    assert response_json(forgotten)["deleted_turns"] == 2
    public = world.chat(URL_AUTHORIZATION_TYPE="NONE")
    issued = session_of(world.post(public, [QUESTION], caller=None))
    assert world.post(public, [QUESTION, issued], caller=None)["statusCode"] == 200
    answered = world.post(world.qa(), [QUESTION, [DOCUMENT]])
    assert answered["statusCode"] == 200
    assert MARKER in answered["body"]  # the answer carried the marker; the logs must not

    stdout = capsys.readouterr().out
    logged = "\n".join([stdout, everything_logged(capsys, caplog)])

    assert_nothing_secret(logged, issued)
    # A session's requests still share one tag, so its lines can be found together.
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert len(requests) == 6
    assert all("session_id" not in line for line in requests)
    tags = [line.get("session_tag") for line in requests]
    assert tags[0] is not None
    assert tags[:3] == [tags[0]] * 3
    assert tags[3] is not None
    assert tags[3] == tags[4] != tags[0]  # the public session's
    if world.door == STREAMING:
        assert [line.get("streamed") for line in requests] == [True] * 2 + [None] + [True] * 3


def test_log_prompts_puts_the_exchange_in_the_log(world, capsys, caplog):
    world.fake_endpoint.reply(REPLY)
    assert world.post(world.chat(LOG_PROMPTS="true"), [QUESTION, SESSION])["statusCode"] == 200
    assert MARKER in everything_logged(capsys, caplog)


def test_a_pdf_upload_pypdf_cannot_read_stays_out_of_the_logs(world, capsys, caplog):
    # Declared a PDF, it goes to pypdf, which warns quoting its first bytes: the user's text.
    boundary = "privacy-upload"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="question"\r\n\r\n{QUESTION}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="document"; '
        f'filename="{MARKER}.pdf"\r\nContent-Type: application/pdf\r\n\r\n{DOCUMENT}\r\n'
        f"--{boundary}--\r\n"
    )
    content_type = f"multipart/form-data; boundary={boundary}"
    response = world.post(world.qa(), body, content_type=content_type)

    assert error_of(response)["code"] == "document_unreadable", response["body"]
    assert f"{MARKER}.pdf" in error_of(response)["message"]  # the caller is told which file
    assert_nothing_secret(everything_logged(capsys, caplog), DOCUMENT[:5])
