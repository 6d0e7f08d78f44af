"""The engine's errors answer the same wherever they arrive, at the Function URL (door 2).

TGI 3.x reports a streamed chat request's validation and overload errors inside a 200 stream
(an error event, then `data: [DONE]`); vLLM reports there what fails once its stream began.
The fake endpoint reproduces both (`report_errors_in_stream`) next to errors before the stream,
and each test runs against every placement and each engine's shape: a prompt too long gives
way (older turns, smaller QA prompts) and answers, or is 413 after one retry; an overloaded
engine is 503 with retry-after; a streamed request is never told to stream.
"""

from __future__ import annotations

import http.client
import json

import pytest

from llm_app.http.web import FunctionApp
from tests.support.events import function_url_event
from tests.support.web import SseReader, forwarded, open_stream, parse_sse, serving, text_of
from tools.model_server.backend import InvocationTimeout
from tools.model_server.protocol import ContainerError

SSE = "text/event-stream"
JSON = "application/json"
# engine, where it reports a streamed request's errors, what the caller accepts. A JSON request's
# model call is buffered: its errors are HTTP errors whatever the engine does with streams.
CASES = {
    "tgi-json": ("tgi", False, JSON),
    "tgi-sse": ("tgi", False, SSE),
    "tgi-sse-in-stream": ("tgi", True, SSE),
    "vllm-json": ("vllm", False, JSON),
    "vllm-sse": ("vllm", False, SSE),
    "vllm-sse-in-stream": ("vllm", True, SSE),
}


@pytest.fixture(params=sorted(CASES))
def case(request, fake_endpoint) -> str:
    """The fake endpoint as the case's engine; returns what the request accepts."""
    name, in_stream, accept = CASES[request.param]
    fake_endpoint.use_engine(name)
    if in_stream:
        fake_endpoint.report_errors_in_stream()
    return accept


def door(load_handler, module: str, **env: str) -> FunctionApp:
    loaded = load_handler(module, AWS_LWA_INVOKE_MODE="response_stream", **env)
    return FunctionApp(loaded.ROUTES, loaded.SETTINGS, loaded.logger)


def ask(address: str, payload: object, accept: str) -> tuple[http.client.HTTPResponse, bytes]:
    event = function_url_event(json.dumps(payload), accept=accept)
    response = open_stream(address, event["body"], forwarded(event))
    return response, response.read()


def answer_text(accept: str, body: bytes) -> str:
    if accept == JSON:
        return str(json.loads(body)["answer"])
    return text_of(parse_sse(body))


def test_a_chat_on_a_tighter_container_lets_older_turns_give_way(
    load_handler, fake_endpoint, memory, case
):
    engine, accept = fake_endpoint, case
    chat = door(load_handler, "chat.handler", **memory)
    engine.backend.respond_with(lambda _prompt: "Noted, " + "and more " * 30)
    with serving(chat) as address:
        response, body = ask(address, ["Remember this: " + "a fact " * 40], JSON)
        session = json.loads(body)["session_id"]
        for turn in range(5):
            ask(address, [f"And this, {turn}: " + "another fact " * 30, session], JSON)
        engine.limit_input_tokens(500)  # the stack still budgets for 1348
        engine.backend.respond_with(lambda _prompt: "Paris.")
        before = len(engine.invocations)
        response, body = ask(address, ["What did I say first?", session], accept)
    assert response.status == 200, body
    assert answer_text(accept, body) == "Paris."
    refused, answered = engine.invocations[before:]
    assert len(answered["messages"]) < len(refused["messages"])
    assert answered["messages"][-1] == refused["messages"][-1]  # the question stays


def test_qa_on_a_tighter_container_retries_smaller_once(load_handler, fake_endpoint, case):
    engine, accept = fake_endpoint, case
    engine.limit_input_tokens(300)
    engine.backend.respond_with(lambda _prompt: "Three days.")
    document = " ".join(["Peter stayed with Elizabeth at the hospital."] * 60)
    with serving(door(load_handler, "qa.handler")) as address:
        response, body = ask(address, ["How long did he stay?", [document]], accept)
    assert response.status == 200, body
    assert answer_text(accept, body) == "Three days."
    refused = len(engine.invocations) - len(engine.backend.calls)
    assert refused == 1  # the stuff prompt; every smaller one fitted


@pytest.mark.parametrize("module", ["chat.handler", "qa.handler"])
def test_a_prompt_the_container_refuses_twice_is_413(load_handler, fake_endpoint, case, module):
    engine, accept = fake_endpoint, case
    engine.backend.count_tokens_with(lambda text: 20 * len(text))  # far denser than any estimate
    payload = {
        "chat.handler": ["Hi there"],
        "qa.handler": {"question": "Hi?", "chain_type": "stuff"},
    }
    with serving(door(load_handler, module, MAX_QUESTION_CHARS="100000")) as address:
        response, body = ask(address, payload[module], accept)
    assert response.status == 413, body
    error = json.loads(body)["error"]
    assert error["code"] == "context_too_long"
    assert "by the model's own count" in error["message"]


@pytest.mark.parametrize("in_stream", [False, True], ids=["before", "in-stream"])
@pytest.mark.parametrize("module", ["chat.handler", "qa.handler"])
def test_an_overloaded_tgi_is_503_with_retry_after(load_handler, fake_endpoint, in_stream, module):
    """TGI's queue is full: an HTTP 429 before a stream; "Model is overloaded" in a 3.x stream."""
    if in_stream:
        fake_endpoint.report_errors_in_stream()
    fake_endpoint.reply(ContainerError.tgi(429, "Model is overloaded", "overloaded"))
    with serving(door(load_handler, module)) as address:
        response, body = ask(address, ["What is the capital of France?"], SSE)
    assert response.status == 503, body
    assert json.loads(body)["error"]["code"] == "model_unavailable"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(("accept", "advice"), [(JSON, True), (SSE, False)])
def test_the_timeout_advice_says_stream_only_to_a_request_that_did_not(
    load_handler, fake_endpoint, accept, advice
):
    fake_endpoint.reply(InvocationTimeout())
    with serving(door(load_handler, "chat.handler")) as address:
        response, body = ask(address, ["Write a long essay."], accept)
    assert response.status == 504, body
    message = json.loads(body)["error"]["message"]
    assert "MAX_NEW_TOKENS" in message
    assert ("text/event-stream" in message) is advice


@pytest.mark.parametrize("engine_name", ["tgi", "vllm"])
def test_a_failure_after_the_first_piece_stays_the_streams_last_event(
    load_handler, fake_endpoint, engine_name
):
    engine = fake_endpoint
    engine.use_engine(engine_name)
    """The mapping is for errors before any text: one mid-stream stays a 200 stream's end."""
    engine.stream_reply(["Paris", " is"], fail_after=1, engine_error=True)
    with serving(door(load_handler, "chat.handler")) as address:
        event = function_url_event(accept=SSE)
        response = open_stream(address, event["body"], forwarded(event))
        assert response.status == 200
        events = SseReader(response).events()
    assert json.loads(events[-1][1])["error"]["code"] == "model_error"
