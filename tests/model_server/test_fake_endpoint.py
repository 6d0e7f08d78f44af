"""The fake endpoint's streaming API, as the function tests use it (tests/support)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

from tests.support.environment import ENDPOINT_NAME
from tests.support.fake_endpoint import FakeEndpoint
from tests.support.model_server import runtime_client

pytestmark = pytest.mark.local

BODY = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}


def open_stream(fake_endpoint: FakeEndpoint, body: dict[str, Any] = BODY) -> Any:
    client = runtime_client(fake_endpoint.url)
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT_NAME, Body=json.dumps(body), ContentType="application/json"
    )
    return iter(response["Body"])


def contents(raw: bytes) -> list[str]:
    lines = [line.removeprefix("data: ") for line in raw.decode().split("\n\n") if line]
    return [
        json.loads(line)["choices"][0]["delta"]["content"] if line != "[DONE]" else line
        for line in lines
    ]


def test_stream_reply_gated_split_and_read_token_by_token(fake_endpoint: FakeEndpoint) -> None:
    gate = fake_endpoint.stream_reply(["Bon", "jour"], split_at=[10], gated=True)
    events = open_stream(fake_endpoint)
    first = next(events)["PayloadPart"]["Bytes"] + next(events)["PayloadPart"]["Bytes"]
    assert contents(first) == ["Bon"]
    assert gate.sent == 1
    gate.release()
    rest = b"".join(event["PayloadPart"]["Bytes"] for event in [next(events), next(events)])
    assert contents(rest) == ["jour"]
    gate.release()
    assert contents(b"".join(e["PayloadPart"]["Bytes"] for e in events)) == ["", "[DONE]"]
    assert fake_endpoint.last_request["stream"] is True


def test_stream_reply_fails_after_some_tokens(fake_endpoint: FakeEndpoint) -> None:
    fake_endpoint.stream_reply(["a", "b"], fail_after=1)
    events = open_stream(fake_endpoint)
    assert contents(next(events)["PayloadPart"]["Bytes"]) == ["a"]
    with pytest.raises(EventStreamError, match="ModelStreamError"):
        next(events)


def test_the_engine_and_the_split_are_reset_between_tests(fake_endpoint: FakeEndpoint) -> None:
    assert fake_endpoint.server.engine == "tgi"
    assert fake_endpoint.server.payload_split_at == ()
    fake_endpoint.use_engine("vllm")
    fake_endpoint.reply("Paris.")
    raw = b"".join(event["PayloadPart"]["Bytes"] for event in open_stream(fake_endpoint))
    assert contents(raw) == ["", "Paris.", "", "[DONE]"]  # vLLM's role chunk first
    with pytest.raises(ValueError, match="engine"):
        fake_endpoint.use_engine("triton")
