"""OpenAI's wire shapes: completions, chunk streams, the models list, and errors.

The renderers (llm_app.http.renderers.Renderer) of the OpenAI route, and its error shape:

- `CompletionJson`: the buffered answer, an `object: "chat.completion"`, rendered at `Done`.
- `CompletionChunks`: the streamed answer as Server-Sent Events: a first chunk with the role,
  one chunk per text piece, a last chunk with `finish_reason`, a usage chunk with
  `choices: []` when the request asked for it (`stream_options.include_usage`), then
  `data: [DONE]`. Progress (QA's long chains) is an SSE comment, which SSE decoders skip.
- `models_list(...)`: `GET /v1/models`.
- `openai_error(error)`: any AppError as OpenAI's `{"error": {message, type, param, code}}`
  with OpenAI's status and headers, from one table (`ERRORS`). Before the first byte it is
  the response (`error_response`); after it, `failed(error)` is the stream's last event, and
  the stream ends without `[DONE]`: the official SDK's Stream raises `APIError` on an event
  whose data holds `error`.

Retries: the official SDKs retry 408, 409, 429 and every 5xx twice by default, waiting as
`retry-after` says (up to a minute), unless the response says `x-should-retry: false`. So a
503 for an endpoint that cannot take requests now (`model_unavailable`) is retried by clients
on their own; errors a retry cannot fix (a paused or missing endpoint, a generation that ran
out of time) carry `x-should-retry: false`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.openai.request import ModelIds, RequestRefused
from llm_app.http.renderers import (
    JSON_HEADERS,
    SSE_DONE,
    SSE_HEADERS,
    ChunkBuilder,
    HttpResponse,
    JsonAnswer,
    Renderer,
    json_body,
    sse,
)
from llm_app.http.request import HttpRequest
from llm_app.http.routes import WireFormat
from llm_app.model.answer import FINISH_STOP, Done, Item, Progress, Text, Usage

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------
def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str | None,
    usage: Usage,
) -> dict[str, Any]:
    """The buffered answer (`created`: Unix seconds)."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason or FINISH_STOP,
            }
        ],
        "usage": usage.as_json(),
    }


@dataclass
class CompletionJson(JsonAnswer):
    """The buffered answer: one `chat.completion`, at `Done` (so every error keeps its status)."""

    chunk: ChunkBuilder = field(kw_only=True)  # the completion's id, created and model

    def body(self, answer: str, done: Done) -> Mapping[str, Any]:
        return chat_completion(
            id=self.chunk.id,
            created=self.chunk.created,
            model=self.chunk.model,
            content=answer,
            finish_reason=done.finish_reason,
            usage=done.usage,
        )

    def failed(self, error: AppError) -> bytes:  # never: the body is sent whole, at Done
        return error_body(error)


@dataclass
class CompletionChunks:
    """The streamed answer's events, in order: the role, the text pieces, the last chunk (and
    the usage chunk when asked for), `[DONE]`; or, after a failure, one error event."""

    chunk: ChunkBuilder
    include_usage: bool = False
    headers: Mapping[str, str] = field(default_factory=lambda: dict(SSE_HEADERS))
    _started: bool = field(default=False, init=False)

    def _delta(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = self.chunk.delta(delta, finish_reason)
        if self.include_usage:  # OpenAI's: null on every chunk but the usage chunk
            chunk["usage"] = None
        head = b""
        if not self._started:  # the first chunk: the role, no text yet (as OpenAI's)
            self._started = True
            head = self._delta({"role": "assistant", "content": ""})
        return head + sse(chunk)

    def render(self, item: Item) -> bytes:
        if isinstance(item, Progress):
            # An SSE comment: keeps the connection busy, skipped by clients.
            return f": progress {item.done}/{item.total}\n\n".encode()
        if isinstance(item, Text):
            return self._delta({"content": item.text})
        last = self._delta({}, item.finish_reason or FINISH_STOP)
        if self.include_usage:
            last += sse({**self.chunk.chunk([]), "usage": item.usage.as_json()})
        return last + SSE_DONE

    def failed(self, error: AppError) -> bytes:
        """The stream's last event after a failure (no `[DONE]` follows)."""
        return sse(openai_error(error).body)


def renderer_for(request: HttpRequest, streamed: bool, settings: Settings) -> Renderer:
    """`chat.completion`, or chunks when the request streams. `model` is the deployed model's
    Hub id whichever id the request named, as OpenAI answers an alias with the model's name."""
    chunk = ChunkBuilder(ModelIds.from_settings(settings).hub_id, request.request_id)
    if not streamed:
        return CompletionJson(chunk=chunk)
    # The route parsed and checked the body; only this flag of it is read here again.
    options = json.loads(request.body).get("stream_options") or {}
    return CompletionChunks(chunk, include_usage=options.get("include_usage") is True)


def models_list(ids: Sequence[str], *, created: int, owned_by: str) -> dict[str, Any]:
    """`GET /v1/models`: every id a request's `model` may name."""
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": created, "owned_by": owned_by}
            for model in ids
        ],
    }


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorRow:
    """How one app error code reads on OpenAI's wire."""

    status: int
    type: str
    # OpenAI's `code` (None: the app's own code is sent, which says more than nothing).
    code: str | None = None
    # False: `x-should-retry: false`, so the SDKs do not retry what a retry cannot fix.
    retry_helps: bool = True


ERRORS: Mapping[ErrorCode, ErrorRow] = MappingProxyType(
    {
        ErrorCode.INVALID_JSON: ErrorRow(400, INVALID_REQUEST, "invalid_json"),
        ErrorCode.INVALID_REQUEST: ErrorRow(400, INVALID_REQUEST),
        ErrorCode.INVALID_SESSION_ID: ErrorRow(400, INVALID_REQUEST),
        ErrorCode.UNKNOWN_SESSION: ErrorRow(400, INVALID_REQUEST),
        ErrorCode.NO_CALLER_IDENTITY: ErrorRow(403, "permission_error", "permission_denied"),
        ErrorCode.METHOD_NOT_ALLOWED: ErrorRow(405, INVALID_REQUEST),
        # A wrong key or token stays wrong; a key over its daily tokens waits for its next day
        # (retry-after), longer than an SDK's retries would wait.
        ErrorCode.UNAUTHORIZED: ErrorRow(
            401, "authentication_error", "invalid_api_key", retry_helps=False
        ),
        ErrorCode.QUOTA_EXCEEDED: ErrorRow(
            429, "insufficient_quota", "insufficient_quota", retry_helps=False
        ),
        ErrorCode.SIGN_IN_UNAVAILABLE: ErrorRow(503, SERVER_ERROR),
        # OpenAI answers a conversation longer than the model takes with a 400 of this code;
        # a body over the function's limit is the same problem, seen earlier.
        ErrorCode.REQUEST_TOO_LARGE: ErrorRow(400, INVALID_REQUEST, "context_length_exceeded"),
        ErrorCode.CONTEXT_TOO_LONG: ErrorRow(400, INVALID_REQUEST, "context_length_exceeded"),
        # Retried by the SDKs on their own, after the error's retry-after.
        ErrorCode.MODEL_UNAVAILABLE: ErrorRow(503, SERVER_ERROR),
        ErrorCode.HISTORY_UNAVAILABLE: ErrorRow(503, SERVER_ERROR),
        ErrorCode.MODEL_ERROR: ErrorRow(502, SERVER_ERROR),
        ErrorCode.BAD_MODEL_OUTPUT: ErrorRow(502, SERVER_ERROR),
        ErrorCode.INTERNAL_ERROR: ErrorRow(500, SERVER_ERROR),
        # Paused on purpose, missing, or out of time: the same request fails the same way.
        ErrorCode.MODEL_PAUSED: ErrorRow(503, SERVER_ERROR, retry_helps=False),
        ErrorCode.ENDPOINT_NOT_FOUND: ErrorRow(502, SERVER_ERROR, retry_helps=False),
        ErrorCode.MODEL_TIMEOUT: ErrorRow(504, SERVER_ERROR, retry_helps=False),
        ErrorCode.DEADLINE_EXCEEDED: ErrorRow(504, SERVER_ERROR, retry_helps=False),
        ErrorCode.DOCUMENT_NOT_ALLOWED: ErrorRow(403, "permission_error", "permission_denied"),
        ErrorCode.DOCUMENT_NOT_FOUND: ErrorRow(404, INVALID_REQUEST, "not_found"),
        ErrorCode.DOCUMENT_UNREADABLE: ErrorRow(422, INVALID_REQUEST),
        ErrorCode.DOCUMENT_UNAVAILABLE: ErrorRow(502, SERVER_ERROR),
    }
)

# For a code without a row (one added later), by its HTTP status: OpenAI's usual reading.
ERRORS_BY_STATUS: Mapping[int, ErrorRow] = MappingProxyType(
    {
        400: ErrorRow(400, INVALID_REQUEST),
        401: ErrorRow(401, "authentication_error", "invalid_api_key", retry_helps=False),
        403: ErrorRow(403, "permission_error", "permission_denied"),
        404: ErrorRow(404, INVALID_REQUEST, "not_found"),
        413: ErrorRow(400, INVALID_REQUEST, "context_length_exceeded"),
        429: ErrorRow(429, "rate_limit_error", "rate_limit_exceeded"),
    }
)


@dataclass(frozen=True)
class OpenAIError:
    """An error as OpenAI sends it: status, headers and `{"error": {...}}`."""

    status: int
    headers: Mapping[str, str]
    body: Mapping[str, Any]


def error_row(error: AppError) -> ErrorRow:
    row = ERRORS.get(error.code)
    if row is not None:
        return row
    status = error.status
    return ERRORS_BY_STATUS.get(status) or ErrorRow(
        status, SERVER_ERROR if status >= 500 else INVALID_REQUEST
    )


def openai_error(error: AppError) -> OpenAIError:
    """`error` in OpenAI's shape and status; a RequestRefused keeps its own status and param."""
    row = error_row(error)
    status, param = row.status, None
    code: str | None = row.code or error.code.value
    if isinstance(error, RequestRefused):
        status, code, param = error.status, error.openai_code, error.param
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    if not row.retry_helps:
        headers["x-should-retry"] = "false"
    body = {"error": {"message": error.message, "type": row.type, "param": param, "code": code}}
    return OpenAIError(status, headers, body)


def error_body(error: AppError) -> bytes:
    return json_body(openai_error(error).body)


def error_response(error: AppError) -> HttpResponse:
    """An error before the first byte, as OpenAI answers it."""
    refused = openai_error(error)
    headers = {**JSON_HEADERS, **refused.headers}
    return HttpResponse(refused.status, headers, iter((json_body(refused.body),)))


# The OpenAI routes' answers and errors (llm_app.http.edge.WiredRoute).
OPENAI_WIRE = WireFormat(renderer_for, error_response)
