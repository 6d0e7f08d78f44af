"""The fake SageMaker endpoint the function tests call: the real protocol server, scripted.

``fake_endpoint`` is one server for the session (reset for each test): the model server's HTTP
layer, validation and SageMaker error shapes with a ``ScriptedBackend`` in place of the model.
It answers InvokeEndpoint and InvokeEndpointWithResponseStream; a streamed Messages API
request (``"stream": true``) gets the engine's SSE chunks in PayloadParts:

    gate = fake_endpoint.stream_reply(["Paris", " is", " nice."], gated=True)
    ...  # call the function; read "Paris" from its response
    gate.release()  # only now does " is" exist
    ...

``reply("text")`` streams too, word by word. ``report_errors_in_stream()`` answers a streamed
request's container errors the way TGI 3.x and vLLM do, inside a 200 stream (see
`FakeEndpoint.report_errors_in_stream`); ``limit_input_tokens(n)`` makes the container's limit
tighter than the stack's settings. Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS
from tools.model_server import tgi_chat, vllm_protocol
from tools.model_server.protocol import SSE_DONE, sse_event
from tools.model_server.scripted_backend import Gate, ScriptedBackend, ScriptedStream
from tools.model_server.server import (
    ENGINES,
    EVENT_STREAM_CONTENT_TYPE,
    PayloadStream,
    Response,
    SageMakerTGIServer,
)

# TGI's InferError kinds that its chat_completions reports inside the stream: `generate_stream`
# validates the request and takes the overload semaphore after the SSE response has begun
# (router/src/infer/mod.rs, router/src/server.rs, TGI 3.x).
_TGI_IN_STREAM_ERROR_TYPES = frozenset({"validation", "overloaded", "generation"})


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
          The usage is the backend's count of the prompt's tokens and ``generated_tokens``
          (default: the number of tokens); it is sent when the request asks for it
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

    def report_errors_in_stream(self) -> None:
        """For the rest of the test, a streamed request's container error is a 200 stream of
        one error event, then ``data: [DONE]``, as the engine sends it:

        - TGI 3.x (router/src/infer/mod.rs ``InferError::into_openai_event``): its validation,
          overload and generation errors as ``{"error": {"message": "<the error>",
          "http_status_code": 422}}``, 422 whatever the error ("Model is overloaded" too);
          other errors (a template's, a body it cannot parse) stay HTTP errors;
        - vLLM (entrypoints/openai/serving_chat.py, ``create_streaming_error_response``): what
          fails once the stream began, as its ErrorResponse, ``{"error": {"message", "type",
          "param", "code"}}``.
        """
        self.server.invoke = self._errors_in_stream  # type: ignore[method-assign]

    def _errors_in_stream(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str | None,
        *,
        response_stream: bool = False,
        **options: Any,
    ) -> Response:
        response = SageMakerTGIServer.invoke(
            self.server,
            endpoint_name,
            body,
            content_type,
            response_stream=response_stream,
            **options,
        )
        if not response_stream or response.headers.get("x-amzn-ErrorType") != "ModelError":
            return response
        event = self._error_event(json.loads(response.json()["OriginalMessage"]))
        if event is None:
            return response
        stream_type = (
            vllm_protocol.CONTENT_TYPE_STREAM
            if self.server.engine == "vllm"
            else tgi_chat.CONTENT_TYPE_STREAM
        )
        stream = PayloadStream(
            iter([sse_event(event), SSE_DONE]),
            split_at=self.server.payload_split_at,
            on_close=lambda: None,
            log=lambda _line: None,
        )
        headers = {
            "Content-Type": EVENT_STREAM_CONTENT_TYPE,
            "X-Amzn-SageMaker-Content-Type": stream_type,
            "x-amzn-RequestId": response.headers["x-amzn-RequestId"],
        }
        return Response(200, b"", headers, stream)

    def _error_event(self, error_body: Any) -> dict[str, Any] | None:
        if self.server.engine == "vllm":
            return error_body if isinstance(error_body, dict) and "error" in error_body else None
        if error_body.get("error_type") not in _TGI_IN_STREAM_ERROR_TYPES:
            return None
        return {"error": {"message": error_body["error"], "http_status_code": 422}}

    def limit_input_tokens(self, max_input_tokens: int) -> None:
        """The container's prompt limit, tighter than the stack's settings, for the test: TGI's
        MAX_INPUT_TOKENS, and the context (vLLM's max_model_len) with room for the same
        new tokens."""
        self.server.limits = replace(
            self.server.limits,
            max_input_tokens=max_input_tokens,
            max_total_tokens=max_input_tokens + MAX_TOTAL_TOKENS - MAX_INPUT_TOKENS,
        )

    def use_engine(self, engine: str) -> None:
        """Answer as ``engine`` ("tgi", the default, or "vllm") for the rest of the test."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        self.server.engine = engine

    def usage_of_last_call(self, completion_tokens: int) -> dict[str, int]:
        """The `usage` an answer reports for the last call: the prompt's tokens as the backend
        counted them, and `completion_tokens`, in OpenAI's names."""
        prompt_tokens = self.backend.count_tokens(self.backend.calls[-1].prompt)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

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
    _endpoint_server.server.__dict__.pop("invoke", None)  # errors before the stream again
    _endpoint_server.limit_input_tokens(MAX_INPUT_TOKENS)
    return _endpoint_server
