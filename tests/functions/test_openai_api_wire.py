"""OpenAI's wire shapes, read by the official clients: the `openai` SDK and LangChain's ChatOpenAI.

The rendered bytes are served on httpx's MockTransport (its own test transport, at the HTTP
boundary), so each client parses them as it parses OpenAI's: its pydantic types, its SSE
decoder, its status -> exception classes and its retries.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import httpx2
import openai
import pytest
from langchain_openai import ChatOpenAI
from openai import (
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llm_app.errors import AppError, ErrorCode
from llm_app.http.openai.request import (
    IGNORED_FIELDS,
    SUPPORTED_FIELDS,
    UNSUPPORTED_FIELDS,
    ModelIds,
    RequestRefused,
)
from llm_app.http.openai.wire import (
    ERRORS,
    CompletionChunks,
    chat_completion,
    error_body,
    models_list,
    openai_error,
)
from llm_app.http.renderers import SSE_DONE, ChunkBuilder
from llm_app.model.answer import Done, Progress, Text, Usage
from tools.paths import REPO_ROOT

MODELS = ModelIds(hub_id="TinyLlama/TinyLlama-1.1B-Chat-v1.0", alias="tinyllama")
CREATED = 1_765_000_000
USAGE = Usage(prompt_tokens=31, completion_tokens=4)
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
JSON_HEADERS = {"content-type": "application/json"}


class Served:
    """One canned answer on a loopback MockTransport, and the requests that reached it."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(self.status, headers=self.headers, content=self.body)

    def client(self, *, max_retries: int = 0) -> openai.OpenAI:
        http = httpx2.Client(transport=httpx2.MockTransport(self))
        return openai.OpenAI(
            base_url="http://chat.local/v1",
            api_key="unused",
            http_client=http,
            max_retries=max_retries,
        )


def chunk_renderer(include_usage: bool = False) -> CompletionChunks:
    return CompletionChunks(ChunkBuilder(MODELS.hub_id, "req-1", CREATED), include_usage)


def completion_body(content: str = "Paris.", finish_reason: str = "stop") -> dict[str, Any]:
    return chat_completion(
        id="chatcmpl-req-1",
        created=CREATED,
        model=MODELS.hub_id,
        content=content,
        finish_reason=finish_reason,
        usage=USAGE,
    )


def streamed(pieces: list[str], *, include_usage: bool, finish_reason: str = "stop") -> bytes:
    renderer = chunk_renderer(include_usage)
    items = [Progress(1, 2), *(Text(piece) for piece in pieces), Done(finish_reason, USAGE)]
    return b"".join(renderer.render(item) for item in items)


def data_events(body: bytes) -> Iterator[dict[str, Any]]:
    for event in body.decode().split("\n\n"):
        if event.startswith("data: ") and event != "data: [DONE]":
            yield json.loads(event.removeprefix("data: "))


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------
def test_a_completion_is_the_sdks_chat_completion() -> None:
    completion = ChatCompletion.model_validate(completion_body())
    assert completion.id == "chatcmpl-req-1"
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (31, 35)

    served = Served(200, JSON_HEADERS, json.dumps(completion_body()).encode())
    answer = served.client().chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Paris."
    assert answer.model == MODELS.hub_id


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_stream_is_the_sdks_chunk_sequence(include_usage: bool) -> None:
    body = streamed(["Pa", "ris", "."], include_usage=include_usage)
    assert body.endswith(b"\n\n" + SSE_DONE)
    chunks = [ChatCompletionChunk.model_validate(data) for data in data_events(body)]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1 - include_usage].choices[0].finish_reason == "stop"
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 4
    assert all(chunk.usage is None for chunk in chunks[: len(chunks) - include_usage])

    served = Served(200, SSE_HEADERS, body)
    kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    sdk_chunks = list(
        served.client().chat.completions.create(
            model="tinyllama",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            **kwargs,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in sdk_chunks if c.choices)
    assert text == "Paris."
    assert len(sdk_chunks) == len(chunks)  # the progress comment is skipped, [DONE] ends it


def test_the_async_sdk_reads_the_same_stream() -> None:
    served = Served(200, SSE_HEADERS, streamed(["Paris", "."], include_usage=True))

    async def handler(request: httpx2.Request) -> httpx2.Response:
        return served(request)

    async def read() -> tuple[str, int]:
        client = openai.AsyncOpenAI(
            base_url="http://chat.local/v1",
            api_key="unused",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        )
        stream = await client.chat.completions.create(
            model="tinyllama",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, total = [], 0
        async for chunk in stream:
            pieces += [c.delta.content or "" for c in chunk.choices]
            total = chunk.usage.total_tokens if chunk.usage else total
        return "".join(pieces), total

    assert asyncio.run(read()) == ("Paris.", 35)


def test_an_empty_answer_still_streams_role_finish_and_done() -> None:
    events = data_events(chunk_renderer().render(Done("length", USAGE)))
    sent = [ChatCompletionChunk.model_validate(data) for data in events]
    assert [c.choices[0].finish_reason for c in sent] == [None, "length"]


def test_langchain_chat_openai_reads_answers_and_streams() -> None:
    def model(served: Served) -> ChatOpenAI:
        return ChatOpenAI(
            model="tinyllama",
            base_url="http://chat.local/v1",
            api_key="unused",  # type: ignore[arg-type]
            http_client=httpx2.Client(transport=httpx2.MockTransport(served)),
            max_retries=0,
        )

    buffered = Served(200, JSON_HEADERS, json.dumps(completion_body()).encode())
    message = model(buffered).invoke("What is the capital of France?")
    assert message.content == "Paris."
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 35
    assert message.response_metadata["finish_reason"] == "stop"

    streaming = Served(200, SSE_HEADERS, streamed(["Pa", "ris."], include_usage=True))
    pieces = list(model(streaming).stream("What is the capital of France?"))
    assert "".join(str(piece.content) for piece in pieces) == "Paris."
    sent = json.loads(streaming.requests[0].content)
    assert sent["stream"] is True


def test_the_models_list_is_the_sdks() -> None:
    body = models_list(MODELS.ids, created=CREATED, owned_by="sagemaker")
    served = Served(200, JSON_HEADERS, json.dumps(body).encode())
    models = served.client().models.list()
    assert [model.id for model in models] == [MODELS.hub_id, "tinyllama"]
    assert served.requests[0].url.path == "/v1/models"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_every_app_error_code_has_a_row() -> None:
    assert set(ERRORS) == set(ErrorCode)


class FutureCode(StrEnum):
    """Codes the sign-in issue will add (bearer keys, quotas): read by their status."""

    INVALID_KEY = "invalid_key"
    RATE_LIMITED = "rate_limited"


class FutureError(AppError):
    def __init__(self, code: FutureCode, status: int) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, f"The request failed: {code.value}.")
        self.code = code  # type: ignore[assignment]
        self._status = status

    @property
    def status(self) -> int:
        return self._status


def failed(code: ErrorCode, retry_after: int | None = None) -> AppError:
    return AppError(code, f"The request failed: {code.value}.", retry_after=retry_after)


TOOLS = RequestRefused("No tools.", param="tools", openai_code="unsupported_parameter")
NO_MODEL = RequestRefused("No model.", param="model", openai_code="model_not_found", status=404)
ERROR_CASES = [
    # (error, the SDK's exception, status, OpenAI's code)
    (TOOLS, BadRequestError, 400, "unsupported_parameter"),
    (NO_MODEL, NotFoundError, 404, "model_not_found"),
    (failed(ErrorCode.CONTEXT_TOO_LONG), BadRequestError, 400, "context_length_exceeded"),
    (failed(ErrorCode.REQUEST_TOO_LARGE), BadRequestError, 400, "context_length_exceeded"),
    (failed(ErrorCode.INVALID_JSON), BadRequestError, 400, "invalid_json"),
    (failed(ErrorCode.NO_CALLER_IDENTITY), PermissionDeniedError, 403, "permission_denied"),
    (FutureError(FutureCode.INVALID_KEY, 401), AuthenticationError, 401, "invalid_api_key"),
    (FutureError(FutureCode.RATE_LIMITED, 429), RateLimitError, 429, "rate_limit_exceeded"),
    (failed(ErrorCode.DOCUMENT_UNREADABLE), UnprocessableEntityError, 422, "document_unreadable"),
    (failed(ErrorCode.MODEL_UNAVAILABLE, 5), InternalServerError, 503, "model_unavailable"),
    (failed(ErrorCode.MODEL_PAUSED), InternalServerError, 503, "model_paused"),
    (failed(ErrorCode.MODEL_ERROR), InternalServerError, 502, "model_error"),
    (failed(ErrorCode.INTERNAL_ERROR), InternalServerError, 500, "internal_error"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "raised", "status", "code"), ERROR_CASES)
def test_errors_raise_the_sdks_own_exceptions(
    error: AppError, raised: type[openai.APIStatusError], status: int, code: str
) -> None:
    wire = openai_error(error)
    assert json.loads(error_body(error)) == wire.body
    served = Served(wire.status, {**JSON_HEADERS, **wire.headers}, error_body(error))
    with pytest.raises(raised) as caught:
        served.client().chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == status
    assert (caught.value.code, caught.value.param) == (code, getattr(error, "param", None))
    assert caught.value.message.endswith(error.message)  # "Error code: 400 - <message>"
    assert set(wire.body["error"]) == {"message", "type", "param", "code"}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's waits between retries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(openai._base_client.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(
    ("error", "attempts", "waited"),
    [
        # The endpoint cannot take requests now: clients retry on their own, as told.
        (AppError(ErrorCode.MODEL_UNAVAILABLE, "Busy; retry.", retry_after=5), 3, [5.0, 5.0]),
        # Paused on purpose, missing, or out of time: a retry would fail the same way.
        (AppError(ErrorCode.MODEL_PAUSED, "Paused."), 1, []),
        (AppError(ErrorCode.ENDPOINT_NOT_FOUND, "No endpoint."), 1, []),
        (AppError(ErrorCode.MODEL_TIMEOUT, "Too slow."), 1, []),
        (RequestRefused("No.", param="n"), 1, []),
    ],
)
def test_the_sdk_retries_only_what_a_retry_can_fix(
    error: AppError, attempts: int, waited: list[float], waits: list[float]
) -> None:
    wire = openai_error(error)
    served = Served(wire.status, {**JSON_HEADERS, **wire.headers}, error_body(error))
    with pytest.raises(openai.APIStatusError):
        served.client(max_retries=2).chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
    assert len(served.requests) == attempts
    assert waits == waited


def test_an_error_after_the_first_byte_ends_the_stream_as_the_sdks_api_error() -> None:
    renderer = chunk_renderer(include_usage=True)
    failure = AppError(ErrorCode.MODEL_ERROR, "The model failed while streaming its answer.")
    body = renderer.render(Text("Par")) + renderer.failed(failure)
    assert SSE_DONE not in body
    events = list(data_events(body))
    assert events[-1] == {
        "error": {
            "message": failure.message,
            "type": "server_error",
            "param": None,
            "code": "model_error",
        }
    }
    served = Served(200, SSE_HEADERS, body)
    chunks = served.client().chat.completions.create(
        model="tinyllama",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    )
    received = iter(chunks)
    assert [next(received).choices[0].delta.content for _ in range(2)] == ["", "Par"]
    with pytest.raises(openai.APIError) as caught:
        next(received)
    assert caught.value.message == failure.message


# ---------------------------------------------------------------------------------------------
# docs/api.md's tables, as the code has them
# ---------------------------------------------------------------------------------------------
API_DOC = (REPO_ROOT / "docs" / "api.md").read_text()


def doc_rows(header: str) -> list[list[str]]:
    """The cells of the rows of docs/api.md's table whose header row is ``header``."""
    lines = API_DOC.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_the_docs_request_fields_are_the_parsers() -> None:
    named = {
        field
        for first, _ in doc_rows("| Request field | Here |")
        for field in re.findall(r"`(\w+)`", first)
    }
    assert named == SUPPORTED_FIELDS | set(UNSUPPORTED_FIELDS) | IGNORED_FIELDS


def test_the_docs_error_table_is_the_wires() -> None:
    rows = doc_rows("| App error | Status | `type` | `code` |")
    documented = set()
    for first, status, kind, code in rows:
        for name in re.findall(r"`(\w+)`", first):
            documented.add(name)
            error = openai_error(AppError(ErrorCode(name), "m"))
            assert (str(error.status), f"`{error.body['error']['type']}`") == (status, kind), name
            said = name if code.startswith("the app's") else re.findall(r"`(\w+)`", code)[-1]
            assert error.body["error"]["code"] == said, name
            assert (error.headers.get("x-should-retry") == "false") == ("no retry" in code), name
    # QA's document errors never reach the chat URL's OpenAI route.
    chat_codes = {code.value for code in ErrorCode if not code.value.startswith("document_")}
    assert documented == chat_codes - {"invalid_session_id", "unknown_session"}
