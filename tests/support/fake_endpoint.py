"""The fake SageMaker endpoint the function tests call: the real protocol server, scripted.

``fake_endpoint`` is one server for the session (reset for each test): the model server's HTTP
layer, validation and SageMaker error shapes with a ``ScriptedBackend`` in place of the model.
It answers InvokeEndpoint and InvokeEndpointWithResponseStream; a streamed Messages API
request (``"stream": true``) gets the engine's SSE chunks in PayloadParts:

    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], gated=True)
    ...  # call the function; read "Paris" from its response
    gate.release()  # only now does " is" exist
    ...

``reply("text")`` streams too, word by word. Registered as a pytest plugin by
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS
from tools.model_server.scripted_backend import Gate, ScriptedBackend, ScriptedStream
from tools.model_server.server import ENGINES, SageMakerTGIServer


@dataclass
class FakeEndpoint:
    """The fake SageMaker runtime as tests drive it: script replies, read what it received."""

    server: SageMakerTGIServer
    backend: ScriptedBackend
    invocations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def reply(self, *steps: Any) -> None:
        """Script the next generations: replies (streamed word by word when streamed),
        exceptions (e.g. ``SageMakerError``: the JSON error before any stream), callables."""
        self.backend.script(*steps)

    def stream_reply(
        self,
        tokens: Sequence[str],
        *,
        finish_reason: str = "eos_token",
        generated_tokens: int | None = None,
        fail_after: int | None = None,
        error_code: str = "StreamBroken",
        engine_error: bool = False,
        split_at: Sequence[int] = (),
        events_per_part: int = 1,
        gated: bool = False,
    ) -> Gate:
        """Script the next generation as these tokens, and how its stream behaves.

        - ``finish_reason``: the backend's ("eos_token", "length", "stop_sequence"); TGI
          sends "stop" for "eos_token", vLLM "stop" for both "eos_token" and "stop_sequence".
          The usage is the prompt's whitespace words and ``generated_tokens`` (default: the
          number of tokens); it is sent when the request asks for it
          (``stream_options.include_usage``).
        - ``fail_after=N``: after N tokens the stream ends with SageMaker's
          ``ModelStreamError`` (``error_code``); boto3 raises ``EventStreamError``. With
          ``engine_error`` the engine reports the failure in its own stream instead: one
          ``data: {"error": ...}`` event (TGI's or vLLM's shape), then ``data: [DONE]``.
        - ``split_at``: byte offsets at which every SSE event is cut into several
          PayloadParts (mid-line, mid-JSON, mid-character); ``events_per_part``: that many
          SSE events in one PayloadPart (cut at ``split_at`` then). Both apply to this and
          the later streams of the test; a gated stream holds an event back until the part
          is full.
        - ``gated``: each piece after the first (token, failure, or the end: the finish
          chunk and ``[DONE]``) waits for ``gate.release()``. Otherwise the gate is open;
          ``gate.sent`` counts the pieces let out either way.
        """
        gate = Gate()
        if not gated:
            gate.open()
        self.backend.script(
            ScriptedStream(
                tuple(tokens),
                finish_reason=finish_reason,
                generated_tokens=generated_tokens,
                fail_after=fail_after,
                error_code=error_code,
                engine_error=engine_error,
                gate=gate,
            )
        )
        self.server.payload_split_at = tuple(split_at)
        self.server.payload_events_per_part = events_per_part
        return gate

    def use_engine(self, engine: str) -> None:
        """Answer as ``engine`` ("tgi", the default, or "vllm") for the rest of the test."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        self.server.engine = engine

    @property
    def last_request(self) -> dict[str, Any]:
        assert self.invocations, "the endpoint received no request"
        return self.invocations[-1]


@pytest.fixture(scope="session")
def _endpoint_server() -> Iterator[FakeEndpoint]:
    backend = ScriptedBackend()
    invocations: list[dict[str, Any]] = []
    server = SageMakerTGIServer(
        backend,
        ENDPOINT_NAME,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        on_invocation=lambda _name, body: invocations.append(body),
    )
    server.start()
    try:
        yield FakeEndpoint(server, backend, invocations)
    finally:
        server.stop()


@pytest.fixture
def fake_endpoint(_endpoint_server: FakeEndpoint) -> FakeEndpoint:
    _endpoint_server.backend.reset()
    _endpoint_server.invocations.clear()
    _endpoint_server.server.payload_split_at = ()
    _endpoint_server.server.payload_events_per_part = 1
    _endpoint_server.server.engine = "tgi"
    return _endpoint_server
