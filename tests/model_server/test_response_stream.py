"""InvokeEndpointWithResponseStream against the local SageMaker runtime, through boto3.

The backend is the scripted one the function tests use (tests/support/fake_endpoint.py), so
every assertion is about the protocol: the event stream framing botocore decodes, TGI's and
vLLM's chat.completion.chunk events inside the PayloadParts, parts cut anywhere, the
ModelStreamError after a failure, the JSON errors before the stream, and delivery one token
at a time (proven with a gate, not with timing).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tests.support.model_server import runtime_client
from tools.model_server import eventstream
from tools.model_server.backend import SageMakerError
from tools.model_server.scripted_backend import (
    Gate,
    ScriptedBackend,
    ScriptedStream,
    llama_like_token_count,
)
from tools.model_server.server import SageMakerTGIServer

pytestmark = pytest.mark.local

ENDPOINT = "stream-test"
MAX_INPUT_TOKENS = 40
MAX_TOTAL_TOKENS = 150
USER = [{"role": "user", "content": "What is the capital of France?"}]
# The Zephyr-templated USER, counted as the scripted backend does (Llama-like: each word with
# its space, and each mark and newline).
PROMPT_TOKENS = llama_like_token_count(ScriptedBackend().apply_chat_template(USER))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SageMakerTGIServer, ScriptedBackend, Any]]:
    backend = ScriptedBackend()
    server = SageMakerTGIServer(
        backend, ENDPOINT, max_input_tokens=MAX_INPUT_TOKENS, max_total_tokens=MAX_TOTAL_TOKENS
    )
    with server:
        yield server, backend, runtime_client(server.url)


@pytest.fixture(params=["tgi", "vllm"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Endpoint:
    server: SageMakerTGIServer
    backend: ScriptedBackend
    client: Any


@pytest.fixture
def endpoint(
    served: tuple[SageMakerTGIServer, ScriptedBackend, Any], engine: str
) -> Iterator[Endpoint]:
    server, backend, client = served
    backend.reset()
    server.engine = engine
    server.payload_split_at = ()
    server.payload_events_per_part = 1
    yield Endpoint(server, backend, client)
    server.engine = "tgi"


def stream(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    return client.invoke_endpoint_with_response_stream(  # type: ignore[no-any-return]
        EndpointName=ENDPOINT, Body=json.dumps(body), ContentType="application/json"
    )


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": USER, "stream": True, **fields}


def payload_parts(response: dict[str, Any]) -> list[bytes]:
    parts = []
    for event in response["Body"]:
        assert list(event) == ["PayloadPart"]
        parts.append(event["PayloadPart"]["Bytes"])
    return parts


def parts_until_error(response: dict[str, Any]) -> tuple[list[bytes], EventStreamError]:
    """The PayloadParts received before the stream's exception event, and what boto3 raised."""
    parts: list[bytes] = []

    def read_all() -> None:
        parts.extend(event["PayloadPart"]["Bytes"] for event in response["Body"])

    with pytest.raises(EventStreamError) as caught:
        read_all()
    return parts, caught.value


def sse_data(raw: bytes) -> list[str]:
    """The ``data:`` of each Server-Sent Event in ``raw`` (the whole stream)."""
    events = raw.decode().split("\n\n")
    assert events[-1] == "", "the stream ends with a complete event"
    assert all(event.startswith("data: ") for event in events[:-1])
    return [event.removeprefix("data: ") for event in events[:-1]]


def chunks(raw: bytes) -> list[dict[str, Any]]:
    data = sse_data(raw)
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def text_of(chunk_list: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunk_list if c["choices"])


# ---------------------------------------------------------------------------
# The event stream framing
# ---------------------------------------------------------------------------
def test_botocore_decodes_each_message_and_checks_its_crcs() -> None:
    data = 'data: {"content":"é"}\n\n'.encode()
    buffer = EventStreamBuffer()
    buffer.add_data(eventstream.payload_part(data) + eventstream.model_stream_error("gone", "X"))
    part, error = list(buffer)
    assert part.headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert part.payload == data
    assert error.headers[":exception-type"] == "ModelStreamError"
    assert error.headers[":message-type"] == "exception"
    assert json.loads(error.payload) == {"Message": "gone", "ErrorCode": "X"}

    corrupt = bytearray(eventstream.payload_part(data))
    corrupt[-6] ^= 1  # one bit of the payload
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(corrupt))
    with pytest.raises(ChecksumMismatch):
        list(buffer)


def test_the_encoder_refuses_what_the_format_cannot_carry() -> None:
    with pytest.raises(ValueError, match="header name"):
        eventstream.encode_message({"": "x"}, b"")
    with pytest.raises(ValueError, match="too long"):
        eventstream.encode_message({"a": "x" * 40_000}, b"")


# ---------------------------------------------------------------------------
# The engines' chunks
# ---------------------------------------------------------------------------
def test_tgi_streams_chat_completion_chunks_then_usage_then_done(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    if server.engine != "tgi":
        pytest.skip("TGI's chunks")
    backend.script(ScriptedStream(("Paris", " is", " the", " capital.")))
    response = stream(client, chat(stream_options={"include_usage": True}))
    assert response["ContentType"] == "text/event-stream"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    received = chunks(b"".join(payload_parts(response)))
    assert [c["choices"][0]["delta"] for c in received[:4]] == [
        {"role": "assistant", "content": token} for token in ("Paris", " is", " the", " capital.")
    ]
    for chunk in received:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == ""
        assert chunk["model"] == backend.model_id
        assert set(chunk) == {
            "object",
            "id",
            "created",
            "model",
            "system_fingerprint",
            "choices",
            "usage",
        }
    assert [c["choices"][0]["finish_reason"] for c in received[:5]] == [None] * 4 + ["stop"]
    assert received[4]["choices"][0]["delta"]["content"] == ""
    assert received[5]["choices"] == []
    assert received[5]["usage"] == {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": 4,
        "total_tokens": PROMPT_TOKENS + 4,
    }
    assert all(c["usage"] is None for c in received[:5])
    assert len(received) == 6


def test_vllm_streams_a_role_chunk_tokens_finish_then_usage(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    if server.engine != "vllm":
        pytest.skip("vLLM's chunks")
    backend.script(ScriptedStream(("Paris", "."), finish_reason="length"))
    response = stream(client, chat(stream_options={"include_usage": True}))
    assert response["ContentType"] == "text/event-stream; charset=utf-8"
    received = chunks(b"".join(payload_parts(response)))
    choices = [c["choices"] for c in received]
    assert choices[:4] == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {"content": "Paris"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "."}, "logprobs": None, "finish_reason": None}],
        [
            {
                "index": 0,
                "delta": {"content": ""},
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
            }
        ],
    ]
    assert received[4] == {
        "id": received[0]["id"],
        "object": "chat.completion.chunk",
        "created": received[0]["created"],
        "model": backend.model_id,
        "choices": [],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "total_tokens": PROMPT_TOKENS + 2,
            "completion_tokens": 2,
        },
    }
    assert received[0]["id"].startswith("chatcmpl-")
    assert {c["id"] for c in received} == {received[0]["id"]}
    assert all("usage" not in c for c in received[:4])


def test_without_include_usage_no_usage_is_sent(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script("Paris is nice.")
    received = chunks(b"".join(payload_parts(stream(client, chat()))))
    assert text_of(received) == "Paris is nice."
    assert all(c["choices"] for c in received)
    assert not any(c.get("usage") for c in received)
    assert received[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_stop_sequence_ends_the_stream_as_each_engine_does(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    backend.script(ScriptedStream(("Paris", " is", " ST", "OP", " more")))
    received = chunks(b"".join(payload_parts(stream(client, chat(stop=["STOP"])))))
    finish = received[-1]["choices"][0]
    if server.engine == "tgi":  # TGI keeps the stop sequence and names it
        assert text_of(received) == "Paris is STOP"
        assert finish["finish_reason"] == "stop_sequence"
    else:  # vLLM leaves it out, and never sends a piece of it ("ST") before it is sure
        assert text_of(received) == "Paris is "
        assert all("ST" not in c["choices"][0]["delta"].get("content", "") for c in received)
        assert (finish["finish_reason"], finish["stop_reason"]) == ("stop", "STOP")


def test_max_tokens_cuts_the_stream_with_length(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script(ScriptedStream(("a", " b", " c", " d")))
    received = chunks(b"".join(payload_parts(stream(client, chat(max_tokens=2)))))
    assert text_of(received) == "a b"
    assert received[-1]["choices"][0]["finish_reason"] == "length"


# ---------------------------------------------------------------------------
# PayloadPart boundaries anywhere
# ---------------------------------------------------------------------------
def test_payload_parts_can_end_mid_line_mid_json_and_mid_character(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    tokens = ("Café", " crème")
    backend.script(ScriptedStream(tokens))
    whole = b"".join(payload_parts(stream(client, chat())))
    backend.script(ScriptedStream(tokens))
    # Cut each event inside "data: ", inside its JSON, and inside the é of "Café" (and the è
    # of " crème": the same offset in the next event).
    first = next(event for event in whole.split(b"\n\n") if b"Caf" in event)
    server.payload_split_at = (3, 9, 40, first.index(b"Caf") + 4)
    parts = payload_parts(stream(client, chat()))
    assert len(parts) > 3 * len(sse_data(whole))
    assert parts[0] == b"dat"  # mid-line
    assert parts[1].startswith(b"a: {")
    assert any(not p.startswith(b"data") and not p.endswith(b"\n\n") for p in parts)  # mid-JSON
    undecodable = 0
    for part in parts:
        try:
            part.decode()
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable  # at least one part ends or starts inside a UTF-8 character
    rejoined = b"".join(parts)
    assert text_of(chunks(rejoined)) == "Café crème"
    assert len(rejoined) == len(whole)


def test_one_payload_part_can_carry_several_events(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    backend.script(ScriptedStream(("a", " b", " c"), fail_after=3))
    server.payload_events_per_part = 2
    received, _ = parts_until_error(stream(client, chat()))
    per_part = [len(sse_data(part)) for part in received]
    # The events before the failure arrive first, the odd one out in a part of its own.
    assert per_part == ([2, 1] if server.engine == "tgi" else [2, 2])
    assert text_of([json.loads(d) for d in sse_data(b"".join(received))]) == "a b c"


# ---------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------
def test_a_failure_mid_stream_is_a_model_stream_error_boto3_raises(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script(
        ScriptedStream(("Paris", " is", " the"), fail_after=2, message="the container died")
    )
    received, error = parts_until_error(stream(client, chat()))
    assert error.response["Error"] == {
        "Code": "ModelStreamError",
        "Message": "the container died",
    }
    data = sse_data(b"".join(received))
    assert "[DONE]" not in data
    assert text_of([json.loads(item) for item in data]) == "Paris is"


def test_the_model_stream_error_carries_sagemakers_error_code(endpoint: Endpoint) -> None:
    server, backend = endpoint.server, endpoint.backend
    backend.script(ScriptedStream(("a",), fail_after=1, error_code="ModelInvocationTimeExceeded"))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request(
        "POST",
        f"/endpoints/{ENDPOINT}/invocations-response-stream",
        body=json.dumps(chat()),
        headers={"Content-Type": "application/json"},
    )
    raw = connection.getresponse()
    assert raw.status == 200
    assert raw.getheader("Transfer-Encoding") == "chunked"
    buffer = EventStreamBuffer()
    buffer.add_data(raw.read())
    connection.close()
    *_, last = list(buffer)
    assert last.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(last.payload)["ErrorCode"] == "ModelInvocationTimeExceeded"


def test_an_engine_error_mid_stream_is_its_error_event_then_done(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    backend.script(
        ScriptedStream(("Paris",), fail_after=1, engine_error=True, message="CUDA out of memory")
    )
    data = sse_data(b"".join(payload_parts(stream(client, chat()))))
    assert data[-1] == "[DONE]"  # the SageMaker stream itself ends normally
    if server.engine == "tgi":
        assert data[-2] == '{"error":{"message":"CUDA out of memory","http_status_code":422}}'
    else:
        assert json.loads(data[-2]) == {
            "error": {
                "message": "CUDA out of memory",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        }
    assert "finish_reason" not in "".join(data[-2:])


def test_an_unexpected_backend_error_mid_stream_is_stream_broken(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client

    def broken() -> Iterator[str]:
        yield "Paris"
        raise RuntimeError("CUDA error: device-side assert triggered")

    backend.generate_stream = lambda prompt, params: broken()  # type: ignore[method-assign]
    try:
        response = stream(client, chat())
        with pytest.raises(EventStreamError, match="device-side assert"):
            payload_parts(response)
    finally:
        del backend.generate_stream


def error_response(client: Any, body: dict[str, Any], endpoint_name: str = ENDPOINT) -> Any:
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint_with_response_stream(
            EndpointName=endpoint_name, Body=json.dumps(body), ContentType="application/json"
        )
    return caught.value.response


def test_errors_before_the_stream_are_invoke_endpoints_json_errors(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    # A body TGI cannot parse, or that vLLM finds too long (test_under_load: TGI's length
    # check comes inside the 200 stream).
    too_long = [{"role": "user", "content": "word " * MAX_TOTAL_TOKENS}]
    body = {"messages": too_long, "stream": True, "max_tokens": -1}
    response = error_response(client, body)
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == (422 if server.engine == "tgi" else 400)
    assert "LogStreamArn" in response

    backend.script(SageMakerError("ThrottlingException", 400, "Rate exceeded"))
    response = error_response(client, chat())
    assert response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}

    backend.script(RuntimeError("out of memory"))
    response = error_response(client, chat())
    assert response["Error"]["Code"] == "ModelError"
    assert "out of memory" in response["OriginalMessage"]

    response = error_response(client, chat(), endpoint_name="no-such-endpoint")
    assert response["Error"]["Code"] == "ValidationError"
    assert "Endpoint no-such-endpoint of account" in response["Error"]["Message"]


# ---------------------------------------------------------------------------
# Other answers on either route
# ---------------------------------------------------------------------------
def test_an_answer_that_does_not_stream_comes_whole_in_the_stream(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script("Paris.")
    response = stream(client, {"messages": USER})
    assert response["ContentType"] == "application/json"
    (part,) = payload_parts(response)
    assert json.loads(part)["choices"][0]["message"]["content"] == "Paris."


def test_invoke_endpoint_returns_a_whole_stream_as_one_body(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script("Paris.")
    response = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=json.dumps(chat()), ContentType="application/json"
    )
    assert response["ContentType"].startswith("text/event-stream")
    assert text_of(chunks(response["Body"].read())) == "Paris."


# ---------------------------------------------------------------------------
# One token at a time
# ---------------------------------------------------------------------------
def test_each_token_leaves_the_server_before_the_next_exists(endpoint: Endpoint) -> None:
    server, backend, client = endpoint.server, endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(("Paris", " is", " nice."), gate=gate))
    events = iter(stream(client, chat())["Body"])
    seen = ""
    if server.engine == "vllm":
        assert b'"role":"assistant"' in next(events)["PayloadPart"]["Bytes"]
    for expected in ("Paris", " is", " nice."):
        chunk = json.loads(sse_data(next(events)["PayloadPart"]["Bytes"])[0])
        seen += chunk["choices"][0]["delta"]["content"]
        assert seen.endswith(expected)
        # The backend has produced exactly what was read: the next token waits for us.
        assert gate.sent == len(seen.split())
        gate.release()
    rest = b"".join(event["PayloadPart"]["Bytes"] for event in events)
    assert sse_data(rest)[-1] == "[DONE]"
    assert gate.sent == 4  # three tokens and the end
    assert len(gate.sent_at) == 4
    assert gate.sent_at == sorted(gate.sent_at)


def test_a_gate_not_released_ends_the_stream_instead_of_hanging(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    backend.script(ScriptedStream(("Paris", " is"), gate=Gate(timeout=0.2)))
    with pytest.raises(EventStreamError, match=r"was not released within 0\.2 s"):
        payload_parts(stream(client, chat()))


def test_a_client_leaving_mid_stream_frees_the_endpoint(endpoint: Endpoint) -> None:
    backend, client = endpoint.backend, endpoint.client
    gate = Gate()
    backend.script(ScriptedStream(tuple(f" w{i}" for i in range(50)), gate=gate))
    response = stream(client, chat())
    next(iter(response["Body"]))
    response["Body"].close()
    gate.open()
    backend.script("Paris.")  # served only once the abandoned stream let go of the backend
    received = chunks(b"".join(payload_parts(stream(client, chat()))))
    assert text_of(received) == "Paris."
