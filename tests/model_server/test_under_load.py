"""The local endpoint under load, as TGI's router behaves: refusals inside the 200 stream,
the overload answer past the bound, and the work of a client that has gone stopped.

The backend is the scripted one, whose ``Gate`` lets each token out only when the test says
so and counts the tokens the "model" produced (``gate.sent``): that count, and the server's
own log, show that a dropped request stops generating. No assertion depends on timing.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.model_server.test_response_stream import chat, chunks, payload_parts, stream, text_of
from tests.support.model_server import runtime_client
from tools.model_server.scripted_backend import (
    Gate,
    ScriptedBackend,
    ScriptedStream,
    llama_like_token_count,
)
from tools.model_server.server import DEFAULT_MAX_CONCURRENT_REQUESTS, SageMakerTGIServer

pytestmark = pytest.mark.local

ENDPOINT = "stream-test"  # the name test_response_stream's helpers address
MAX_INPUT_TOKENS = 40
MAX_TOTAL_TOKENS = 150
MANY_TOKENS = tuple(f" w{i}" for i in range(50))
OVERLOADED_EVENT = b'data: {"error":{"message":"Model is overloaded","http_status_code":422}}\n\n'
DONE = b"data: [DONE]\n\n"
USER = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass
class Endpoint:
    server: SageMakerTGIServer
    backend: ScriptedBackend
    client: Any
    log: list[str]

    def wait_for_log(self, predicate: Callable[[str], bool]) -> str:
        """The first log line ``predicate`` accepts, once the server has written it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [line for line in list(self.log) if predicate(line)]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no such log line in {self.log}")

    def raw_request(self, body: dict[str, Any], route: str) -> http.client.HTTPConnection:
        """A request sent on a connection of its own, which the test can drop."""
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        connection.request(
            "POST",
            f"/endpoints/{ENDPOINT}/{route}",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return connection


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SageMakerTGIServer, ScriptedBackend, Any, list[str]]]:
    backend = ScriptedBackend()
    log: list[str] = []
    server = SageMakerTGIServer(
        backend,
        ENDPOINT,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        log=log.append,
    )
    with server:
        yield server, backend, runtime_client(server.url), log


@pytest.fixture(params=["tgi", "vllm"])
def endpoint(
    served: tuple[SageMakerTGIServer, ScriptedBackend, Any, list[str]],
    request: pytest.FixtureRequest,
) -> Iterator[Endpoint]:
    server, backend, client, log = served
    backend.reset()
    log.clear()
    server.engine = request.param
    yield Endpoint(server, backend, client, log)
    server.engine = "tgi"
    server.max_concurrent_requests = DEFAULT_MAX_CONCURRENT_REQUESTS


def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.01)


def cancelled(line: str) -> bool:
    return " cancelled: " in line


# ---------------------------------------------------------------------------
# Refusals of a streamed chat
# ---------------------------------------------------------------------------
def test_a_too_long_streamed_chat_is_refused_as_each_engine_does(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    too_long = {"messages": [{"role": "user", "content": "word " * 160}], "stream": True}
    if server.engine == "vllm":  # vLLM checks the length before it streams: HTTP 400
        with pytest.raises(ClientError) as caught:
            stream(client, too_long)
        assert caught.value.response["OriginalStatusCode"] == 400
        return
    # TGI validates inside its 200 stream: one error event, then [DONE].
    prompt_tokens = llama_like_token_count(backend.apply_chat_template(too_long["messages"]))
    response = stream(client, too_long)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert b"".join(payload_parts(response)) == (
        b'data: {"error":{"message":"Input validation error: `inputs` tokens + '
        b"`max_new_tokens` must be <= 150. Given: %d `inputs` tokens and 100 "
        b'`max_new_tokens`","http_status_code":422}}\n\n' % prompt_tokens + DONE
    )
    assert backend.calls == []  # nothing was generated


def test_the_same_chat_buffered_is_tgis_http_422(endpoint: Endpoint) -> None:
    if endpoint.server.engine == "vllm":
        pytest.skip("TGI's error")
    messages = [{"role": "user", "content": "word " * 30}]
    prompt_tokens = llama_like_token_count(endpoint.backend.apply_chat_template(messages))
    with pytest.raises(ClientError) as caught:
        endpoint.client.invoke_endpoint(
            EndpointName=ENDPOINT,
            Body=json.dumps({"messages": messages, "max_tokens": 10}),
            ContentType="application/json",
        )
    response = caught.value.response
    assert response["OriginalStatusCode"] == 422
    assert json.loads(response["OriginalMessage"]) == {
        "error": "Input validation error: `inputs` must have less than 40 tokens. "
        f"Given: {prompt_tokens}",
        "error_type": "validation",
    }


# ---------------------------------------------------------------------------
# The bound on concurrent requests
# ---------------------------------------------------------------------------
def test_past_the_bound_tgi_answers_model_is_overloaded(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    if server.engine == "vllm":
        pytest.skip("vLLM has no bound: its scheduler queues requests")
    server.max_concurrent_requests = 1
    gate = Gate()
    backend.script(ScriptedStream(("Paris", "."), gate=gate))
    holding = iter(stream(client, chat())["Body"])
    next(holding)  # the first request holds the only permit while it generates

    refused = stream(client, chat())  # streamed: 200, then the error event
    assert refused["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert b"".join(payload_parts(refused)) == OVERLOADED_EVENT + DONE
    endpoint.wait_for_log(
        lambda line: (
            "200" in line and "the engine's error event: Model is overloaded (request " in line
        )
    )

    with pytest.raises(ClientError) as caught:  # buffered: HTTP 429 in a ModelError
        client.invoke_endpoint(
            EndpointName=ENDPOINT,
            Body=json.dumps({"messages": USER}),
            ContentType="application/json",
        )
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 429
    assert (
        response["OriginalMessage"] == '{"error":"Model is overloaded","error_type":"overloaded"}'
    )

    gate.open()
    list(holding)
    backend.script("Paris.")  # the permit is free again
    assert text_of(chunks(b"".join(payload_parts(stream(client, chat()))))) == "Paris."


def test_a_bound_of_zero_refuses_every_request(endpoint: Endpoint) -> None:
    server, client = endpoint.server, endpoint.client
    if server.engine == "vllm":
        pytest.skip("vLLM has no bound")
    server.max_concurrent_requests = 0
    assert b"".join(payload_parts(stream(client, chat()))) == OVERLOADED_EVENT + DONE
    assert endpoint.backend.calls == []


# ---------------------------------------------------------------------------
# A client that goes away
# ---------------------------------------------------------------------------
def test_a_dropped_stream_stops_generating_and_the_next_request_is_served(
    endpoint: Endpoint,
) -> None:
    backend, client = endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(MANY_TOKENS, gate=gate))
    response = stream(client, chat())
    next(iter(response["Body"]))
    response["Body"].close()
    gate.open()
    line = endpoint.wait_for_log(cancelled)
    assert "the client disconnected" in line
    assert gate.sent < len(MANY_TOKENS)  # the model stopped
    backend.script("Paris.")
    assert text_of(chunks(b"".join(payload_parts(stream(client, chat()))))) == "Paris."


def test_a_dropped_buffered_request_stops_generating(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(MANY_TOKENS, gate=gate))
    connection = endpoint.raw_request({"messages": USER, "max_tokens": 100}, "invocations")
    until(lambda: gate.sent >= 1)  # generating, waiting for the next token
    connection.close()
    gate.open()
    line = endpoint.wait_for_log(cancelled)
    stopped_after = int(line.rsplit("after ", 1)[1].split()[0])
    assert stopped_after < len(MANY_TOKENS)
    assert gate.sent < len(MANY_TOKENS)
    backend.script("Paris.")
    answer = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=json.dumps({"messages": USER}), ContentType="application/json"
    )
    assert json.loads(answer["Body"].read())["choices"][0]["message"]["content"] == "Paris."


def test_a_request_dropped_while_waiting_for_the_model_never_runs(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(("Paris", "."), gate=gate), ScriptedStream(MANY_TOKENS))
    holding = iter(stream(client, chat())["Body"])
    next(holding)  # the model is busy with the first request
    waiting = endpoint.raw_request(chat(), "invocations-response-stream")
    endpoint.wait_for_log(lambda line: "2 in flight" in line)
    waiting.close()
    line = endpoint.wait_for_log(cancelled)
    assert line.endswith("generation stopped after 0 tokens")
    gate.open()
    assert len(list(holding)) > 0
    backend.script("Paris.")
    assert text_of(chunks(b"".join(payload_parts(stream(client, chat()))))) == "Paris."


def test_start_end_and_cancellation_are_logged_without_the_prompt(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(MANY_TOKENS, gate=gate), "Paris.")
    dropped = stream(client, chat())
    next(iter(dropped["Body"]))
    dropped["Body"].close()
    gate.open()
    endpoint.wait_for_log(cancelled)
    payload_parts(stream(client, chat()))
    endpoint.wait_for_log(lambda line: line.startswith("POST "))
    first, second = (line for line in endpoint.log if " started: " in line)
    number = first.split()[1]
    assert first.startswith(f"request {number} started: POST /endpoints/{ENDPOINT}/")
    assert second.startswith(f"request {int(number) + 1} started: ")
    assert endpoint.log[1].startswith(f"request {number} cancelled: ")
    assert endpoint.log[-1].endswith(f"(request {int(number) + 1})")
    assert len(endpoint.log) == 4
    assert not any("capital" in line for line in endpoint.log)
