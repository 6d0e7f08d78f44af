"""Streamed answers through both front doors, against the fake endpoint's real response stream.

Door 2 is the ASGI app (llm_app.http.web) served by uvicorn on a loopback port and called over
HTTP as the Lambda Web Adapter calls it; door 1 is the buffered handler on Function URL
events. Incremental delivery is proven with the gated fake endpoint: a token exists only
after the test has read the one before it, so no timing is involved.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest
from uvicorn.config import STARTUP_FAILURE

from llm_app.http.web import FunctionApp
from tests.support.aws_calls import recording_function_calls
from tests.support.environment import HISTORY_TABLE, function_env
from tests.support.events import (
    ALICE,
    BOB,
    FUNCTION_NAME,
    REQUEST_ID,
    function_url_event,
    response_json,
)
from tests.support.web import (
    SseReader,
    adapter_headers,
    forwarded,
    open_stream,
    parse_sse,
    send,
    serving,
    text_of,
)
from tools.model_server.backend import SageMakerError
from tools.paths import REPO_ROOT

SSE = "text/event-stream"
SEED_BODY = '["What is the capital of France?"]'
TABLE = HISTORY_TABLE


def door(module) -> FunctionApp:
    """Door 2 of a loaded handler module, as `python -m llm_app.http.web <module>` builds it."""
    return FunctionApp(module.ROUTES, module.SETTINGS, module.logger)


@pytest.fixture
def load_handler(load_handler):
    """Handlers as they run behind the adapter (AWS_LWA_INVOKE_MODE=response_stream, which
    Terraform sets with response_streaming = true), unless a test names another mode."""

    def load(module: str, **env: str):
        return load_handler(module, **{"AWS_LWA_INVOKE_MODE": "response_stream", **env})

    return load


@pytest.fixture
def chat(load_handler):
    return load_handler("chat.handler")


@pytest.fixture
def buffered_chat(load_handler):
    """Chat deployed without the adapter (response_streaming = false): door 1 alone."""
    return load_handler("chat.handler", AWS_LWA_INVOKE_MODE="buffered")


@pytest.fixture
def chat_url(chat):
    with serving(door(chat)) as address:
        yield address


def ask(address: str, body: str = SEED_BODY, accept: str = SSE, caller=ALICE):
    event = function_url_event(body, caller=caller, accept=accept)
    return open_stream(address, event["body"], forwarded(event))


def chunk(data: str) -> dict:
    return json.loads(data)


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------
def test_each_token_reaches_the_client_before_the_next_exists(chat_url, fake_endpoint):
    gate = fake_endpoint.stream_reply(["Paris", " is", " the", " capital."], gated=True)

    response = ask(chat_url)
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream; charset=utf-8"
    reader = SseReader(response)
    seen = []
    for expected in ["Paris", " is", " the", " capital."]:
        name, data = reader.next_event()
        assert name is None
        seen.append(chunk(data)["choices"][0]["delta"]["content"])
        assert seen[-1] == expected
        # Only the tokens read so far have left the endpoint.
        assert gate.sent == len(seen)
        gate.release()
    last = chunk(reader.next_event()[1])
    assert reader.next_event() == (None, "[DONE]")
    assert reader.next_event() is None

    assert last["object"] == "chat.completion.chunk"
    assert last["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert last["usage"]["completion_tokens"] == 4
    assert last["usage"]["total_tokens"] == (
        last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    )
    assert last["session_id"] is None
    assert fake_endpoint.last_request["stream"] is True


@pytest.mark.parametrize("engine", ["tgi", "vllm"])
def test_sse_split_mid_line_across_payload_parts_is_reassembled(chat_url, fake_endpoint, engine):
    fake_endpoint.use_engine(engine)
    tokens = ["Par", "is ", "é", "t", "é", " 🎉", "."]
    fake_endpoint.stream_reply(tokens, split_at=(1, 7, 19, 40, 41, 42))

    events = SseReader(ask(chat_url)).events()

    assert text_of(events) == "".join(tokens)
    assert events[-1] == (None, "[DONE]")
    assert chunk(events[-2][1])["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("engine", ["tgi", "vllm"])
def test_several_sse_events_in_one_payload_part_are_each_a_token(chat_url, fake_endpoint, engine):
    fake_endpoint.use_engine(engine)
    tokens = ["Paris", " is", " the", " capital", "."]
    fake_endpoint.stream_reply(tokens, events_per_part=3)

    events = SseReader(ask(chat_url)).events()

    deltas = [chunk(data)["choices"][0]["delta"].get("content") for _, data in events[:-2]]
    assert deltas == tokens
    assert chunk(events[-2][1])["choices"][0]["finish_reason"] == "stop"


def test_text_plain_gets_the_raw_text_as_it_comes(chat_url, fake_endpoint):
    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], gated=True)

    response = ask(chat_url, accept="text/plain")
    assert response.getheader("content-type") == "text/plain; charset=utf-8"
    first = response.read1()
    assert first == b"Paris"
    assert gate.sent == 1
    gate.release(3)
    assert first + response.read() == b"Paris is nice.\n"


def test_the_object_form_asks_for_a_stream_without_an_accept_header(chat_url, fake_endpoint):
    fake_endpoint.reply("Paris.")
    body = json.dumps({"query": "What is the capital of France?", "stream": True})
    events = SseReader(ask(chat_url, body, accept="*/*")).events()
    assert text_of(events) == "Paris."


def test_a_non_boolean_stream_field_is_refused(chat_url, fake_endpoint):
    body = json.dumps({"query": "What is the capital of France?", "stream": "yes"})
    event = function_url_event(body)
    reply = send(chat_url, event["body"], forwarded(event))
    assert reply.status == 400
    assert reply.json()["error"]["message"] == "'stream' must be true or false; got a string."
    assert fake_endpoint.invocations == []


def test_an_answer_cut_at_max_new_tokens_says_length(chat_url, fake_endpoint):
    fake_endpoint.stream_reply(["Paris", " is"], finish_reason="length")
    events = SseReader(ask(chat_url)).events()
    assert chunk(events[-2][1])["choices"][0]["finish_reason"] == "length"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_an_error_before_the_first_byte_keeps_its_status_and_json(chat_url, fake_endpoint):
    fake_endpoint.reply(SageMakerError("ThrottlingException", 400, "Rate exceeded"))

    response = ask(chat_url)

    assert response.status == 503
    assert response.getheader("retry-after") == "5"
    assert response.getheader("content-type") == "application/json"
    assert json.loads(response.read())["error"]["code"] == "model_unavailable"


def test_an_error_after_the_first_byte_is_one_error_event_and_no_done(chat_url, fake_endpoint):
    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], fail_after=2, gated=True)

    response = ask(chat_url)
    assert response.status == 200
    reader = SseReader(response)
    assert chunk(reader.next_event()[1])["choices"][0]["delta"]["content"] == "Paris"
    gate.release(3)
    rest = reader.events()

    assert chunk(rest[0][1])["choices"][0]["delta"]["content"] == " is"
    assert len(rest) == 2
    error = chunk(rest[1][1])["error"]
    assert error["code"] == "model_error"
    assert "failed while streaming" in error["message"]
    # SageMaker's own message goes to the log only.
    assert "broke" not in error["message"]


def test_a_plain_text_stream_that_fails_ends_with_an_error_line(chat_url, fake_endpoint):
    fake_endpoint.stream_reply(["Paris", " is"], fail_after=1)
    body = ask(chat_url, accept="text/plain").read().decode()
    assert body.startswith("Paris\n[error] model_error: ")


def test_a_request_the_adapter_did_not_forward_never_reaches_the_function(chat_url, fake_endpoint):
    event = function_url_event(accept=SSE)
    headers = {k: v for k, v in forwarded(event).items() if k != "x-amzn-request-context"}

    reply = send(chat_url, event["body"], headers)

    assert reply.status == 403
    assert reply.json()["error"]["code"] == "no_caller_identity"
    assert fake_endpoint.invocations == []


def test_the_adapters_readiness_check_is_answered_without_the_function(chat_url, fake_endpoint):
    reply = send(chat_url, None, {}, method="GET")
    assert reply.status == 200
    assert fake_endpoint.invocations == []


def test_the_after_restore_hook_reseeds_random_and_only_for_the_adapter(
    load_handler, fake_endpoint
):
    chat = load_handler("chat.handler", AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH="/_lwa/after-restore")
    app = door(chat)
    with serving(app) as address:
        random.seed(42)
        expected_if_not_reseeded = random.random()
        random.seed(42)
        assert send(address, None, {}, path="/_lwa/after-restore").status == 200
        assert random.random() != expected_if_not_reseeded
        # A URL caller's request to the same path is the function's, never the hook.
        event = function_url_event(accept="application/json")
        fake_endpoint.reply("Paris.")
        random.seed(42)
        reply = send(address, event["body"], forwarded(event), path="/_lwa/after-restore")
        assert reply.json()["answer"] == "Paris."
        assert random.random() == expected_if_not_reseeded


def test_a_body_over_the_limit_is_413(load_handler, fake_endpoint):
    chat = load_handler("chat.handler", MAX_BODY_BYTES="1024")
    with serving(door(chat)) as address:
        event = function_url_event(json.dumps(["x" * 2000]))
        reply = send(address, event["body"], forwarded(event))
    assert reply.status == 413
    assert fake_endpoint.invocations == []


# ---------------------------------------------------------------------------------------------
# The JSON contract, and door 1
# ---------------------------------------------------------------------------------------------
def test_without_a_stream_asked_door_2_answers_door_1s_json(
    chat, chat_url, fake_endpoint, lambda_context
):
    fake_endpoint.reply("Paris.", "Paris.")
    event = function_url_event()
    over_http = send(chat_url, event["body"], forwarded(event))
    buffered = chat.handler(event, lambda_context)

    assert over_http.status == buffered["statusCode"] == 200
    assert over_http.body.decode() == buffered["body"]
    assert list(over_http.json()) == ["answer", "session_id", "memory", "finish_reason", "usage"]
    assert fake_endpoint.invocations[0]["stream"] is False


def test_the_buffered_handler_delivers_the_same_sse_whole(
    buffered_chat, fake_endpoint, lambda_context
):
    fake_endpoint.stream_reply(["Paris", " is", " nice."], finish_reason="length")
    response = buffered_chat.handler(function_url_event(accept=SSE), lambda_context)

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "text/event-stream; charset=utf-8"
    events = parse_sse(response["body"].encode())
    assert text_of(events) == "Paris is nice."
    assert chunk(events[-2][1])["choices"][0]["finish_reason"] == "length"
    assert events[-1] == (None, "[DONE]")
    # Read whole (InvokeEndpoint): a buffered deployment calls what it always did.
    assert fake_endpoint.last_request["stream"] is False


def test_the_buffered_handler_delivers_plain_text_whole(
    buffered_chat, fake_endpoint, lambda_context
):
    fake_endpoint.stream_reply(["Paris", " is", " nice."])
    response = buffered_chat.handler(function_url_event(accept="text/plain"), lambda_context)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert "x-session-id" not in response["headers"]  # memory is off: no session
    assert response["body"] == "Paris is nice.\n"


def test_a_json_answer_cut_at_max_new_tokens_says_length(
    load_handler, fake_endpoint, lambda_context
):
    chat = load_handler("chat.handler", MAX_NEW_TOKENS="2")
    fake_endpoint.reply("Paris is the capital.")
    body = response_json(chat.handler(function_url_event(), lambda_context))
    assert body["answer"] == "Paris is"
    assert body["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


# ---------------------------------------------------------------------------------------------
# Chat memory: a turn is stored only when the model finished
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def memory_url(load_handler, memory, dynamodb):
    chat = load_handler("chat.handler", **memory)
    with serving(door(chat)) as address:
        yield address


def stored_answers(dynamodb) -> list[str]:
    return [item["answer"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]]


def test_a_completed_stream_stores_the_turn_and_names_the_session(
    memory_url, fake_endpoint, dynamodb
):
    fake_endpoint.stream_reply(["Paris", " is", " nice."])

    response = ask(memory_url)
    session_header = response.getheader("x-session-id")
    events = SseReader(response).events()

    last = chunk(events[-2][1])
    assert last["session_id"] == session_header
    assert len(session_header) == 43
    assert last["memory"] == "enabled"
    assert stored_answers(dynamodb) == ["Paris is nice."]


def test_a_failed_stream_stores_nothing(memory_url, fake_endpoint, dynamodb):
    fake_endpoint.stream_reply(["Paris", " is", " nice."], fail_after=2)
    events = SseReader(ask(memory_url)).events()
    assert "error" in chunk(events[-1][1])
    assert stored_answers(dynamodb) == []


def test_a_client_that_leaves_mid_stream_stores_nothing(
    load_handler, memory, dynamodb, fake_endpoint
):
    """Driven through the ASGI interface itself, so the disconnect arrives at a known point:
    right after the first token was sent."""
    chat = load_handler("chat.handler", **memory)
    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], gated=True)
    event = function_url_event(accept=SSE)
    sent: list[dict] = []

    async def call() -> None:
        gone = asyncio.Event()
        messages = [{"type": "http.request", "body": event["body"].encode(), "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message.get("body", b"").startswith(b"data: "):
                gone.set()  # the client hangs up once it has the first token
                gate.release()

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in forwarded(event).items()],
        }
        await door(chat)(scope, receive, send)

    asyncio.run(call())

    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert text_of(parse_sse(b"".join(bodies))) in ("Paris", "Paris is")
    assert not any(b"[DONE]" in body for body in bodies)
    assert gate.sent < 4  # the rest of the answer was never asked for
    assert stored_answers(dynamodb) == []
    gate.open()  # let the abandoned stream end at the endpoint, for the next test


def test_door_2_logs_carry_the_lambda_request_id(capsys, load_handler, fake_endpoint):
    chat = load_handler("chat.handler")  # after capsys: its Logger writes to the captured stdout
    fake_endpoint.stream_reply(["Paris."])
    with serving(door(chat)) as address:
        SseReader(ask(address)).events()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    request = next(line for line in lines if line["message"] == "request")
    assert request["function_request_id"] == REQUEST_ID
    assert request["function_name"] == FUNCTION_NAME
    assert request["streamed"] is True
    assert request["completed"] is True
    assert request["first_token_ms"] <= request["model_ms"]


def test_the_start_command_fails_loudly_when_its_port_is_taken(fake_endpoint):
    """What run.sh execs: without a listening app LWA's readiness check would wait out the
    init, so the command exits non-zero (uvicorn's startup failure) instead."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = subprocess.run(
            [sys.executable, "-m", "llm_app.http.server", "chat.handler", "--port", str(port)],
            env={
                **function_env(fake_endpoint.url),
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(REPO_ROOT / "functions"),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert started.returncode == STARTUP_FAILURE, started.stderr[-2000:]
    assert "address already in use" in started.stderr.lower()


# ---------------------------------------------------------------------------------------------
# QA: progress while the chain runs, then the final call's tokens
# ---------------------------------------------------------------------------------------------
def long_document(words: int = 2500) -> str:
    return " ".join(f"word{i}" for i in range(words))


@pytest.mark.parametrize("chain_type", ["map_reduce", "refine"])
def test_qa_sends_progress_then_streams_the_final_call(load_handler, fake_endpoint, chain_type):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.respond_with(lambda _prompt: "A note.")
    body = json.dumps(
        {"question": "What?", "documents": [long_document()], "chain_type": chain_type}
    )
    with serving(door(qa)) as address:
        events = SseReader(ask(address, body)).events()

    progress = [json.loads(data) for name, data in events if name == "progress"]
    chunks = [chunk(data) for name, data in events if name is None and data != "[DONE]"]
    last = chunks[-1]
    calls = len(fake_endpoint.invocations)
    assert [p["done"] for p in progress] == list(range(1, calls))
    assert all(p["total"] >= p["done"] for p in progress)
    assert progress[-1]["total"] == calls
    assert text_of(events) == "A note."
    assert last["chain_type"] == chain_type
    assert last["chunks"] > 1
    assert last["choices"][0]["finish_reason"] == "stop"
    # Usage is summed over every call of the chain.
    assert last["usage"]["completion_tokens"] == 2 * calls
    assert [i["stream"] for i in fake_endpoint.invocations] == [False] * (calls - 1) + [True]
    assert events[-1] == (None, "[DONE]")


def test_qa_json_usage_is_summed_over_the_chain(load_handler, fake_endpoint, lambda_context):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.respond_with(lambda _prompt: "A note.")
    body = json.dumps({"question": "What?", "documents": [long_document()], "chain_type": "refine"})
    response = qa.handler(function_url_event(body), lambda_context)
    answer = response_json(response)
    calls = len(fake_endpoint.invocations)
    assert calls > 1
    assert list(answer) == ["answer", "chain_type", "chunks", "finish_reason", "usage"]
    assert answer["usage"]["completion_tokens"] == 2 * calls
    assert answer["usage"]["prompt_tokens"] == sum(
        fake_endpoint.backend.count_tokens(call.prompt) for call in fake_endpoint.backend.calls
    )


def test_qa_validation_errors_keep_their_status_when_streaming(load_handler, fake_endpoint):
    qa = load_handler("qa.handler")
    body = json.dumps({"question": "What?", "chain_type": "nope"})
    with serving(door(qa)) as address:
        event = function_url_event(body, accept=SSE)
        reply = send(address, event["body"], forwarded(event))
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "invalid_request"


def test_qa_that_runs_out_of_time_mid_stream_ends_with_deadline_exceeded(
    load_handler, fake_endpoint
):
    qa = load_handler("qa.handler", QA_DEADLINE_RESERVE_SECONDS="1", QA_MAP_CONCURRENCY="1")

    def slow_note(_prompt: str) -> str:
        time.sleep(0.3)
        return "A note."

    fake_endpoint.backend.respond_with(slow_note)
    body = json.dumps({"question": "What?", "documents": [long_document()], "stream": True})
    event = function_url_event(body)
    headers = {**forwarded(event), **adapter_headers(event, seconds_left=2.5)}
    with serving(door(qa)) as address:
        started = time.monotonic()
        events = SseReader(open_stream(address, event["body"], headers)).events()
        answered_after = time.monotonic() - started

    assert answered_after < 2.5  # before Lambda would have stopped the function
    assert events[0][0] == "progress"  # the status (200) was sent with the first progress
    assert json.loads(events[-1][1])["error"]["code"] == "deadline_exceeded"
    assert (None, "[DONE]") not in events


def test_door_2_knows_the_caller_only_from_the_adapters_request_context(
    load_handler, memory, dynamodb, fake_endpoint
):
    chat = load_handler("chat.handler", **memory)
    fake_endpoint.reply("Paris.", "Who knows?")
    with serving(door(chat)) as address:
        alice = ask(address, caller=ALICE)
        session = alice.getheader("x-session-id")
        SseReader(alice).events()
        # Bob continues Alice's session id: his own, empty session.
        SseReader(ask(address, json.dumps(["And its size?", session]), caller=BOB)).events()

    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "And its size?"}
    ]


def test_a_streamed_answer_is_recorded_under_both_names_iam_may_check(load_handler, fake_endpoint):
    """InvokeEndpointWithResponseStream: its API reference names sagemaker:InvokeEndpoint, the
    Service Authorization Reference an action of its own; the streaming roles get both."""
    fake_endpoint.reply("Paris.")
    with recording_function_calls("eu-west-1", "123456789012") as recorder:
        chat = load_handler("chat.handler")
        with serving(door(chat)) as address:
            SseReader(ask(address)).events()

    assert fake_endpoint.last_request["stream"] is True
    assert sorted(call.action for call in recorder.calls) == [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    ]


def test_the_buffered_door_never_streams_the_model_call(
    load_handler, fake_endpoint, lambda_context
):
    """A buffered deployment is granted InvokeEndpoint alone: a requested stream is read whole."""
    fake_endpoint.reply("Paris.")
    with recording_function_calls("eu-west-1", "123456789012") as recorder:
        chat = load_handler("chat.handler", AWS_LWA_INVOKE_MODE="buffered")
        response = chat.handler(function_url_event(accept=SSE), lambda_context)
    assert response["statusCode"] == 200
    assert [call.action for call in recorder.calls] == ["sagemaker:InvokeEndpoint"]
