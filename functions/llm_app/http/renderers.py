"""Wire formats: how an answer's typed items (llm_app.model.answer) become bytes.

A `Renderer` turns each item into bytes, or into nothing yet. The edge (llm_app.http.edge)
sends nothing, status and headers included, until a renderer has produced its first bytes:
until then an error is answered with its own status (`error_response`); after them, it
becomes the stream's last bytes (`Renderer.failed`).

- `JsonAnswer`: today's JSON, `{"answer": ..., **fields, "finish_reason", "usage"}`, rendered
  whole at `Done` (so every error keeps its status);
- `ServerSentEvents`: an OpenAI `chat.completion.chunk` per piece, `event: progress` for QA's
  long chains, a last chunk with `finish_reason`, `usage` and the answer's fields, then
  `data: [DONE]`; an error after the first byte is one `data: {"error": ...}` event and no
  `[DONE]`: a stream never just stops;
- `PlainText`: the text as it comes (for `curl -N`), a newline at its end; an error is a last
  `[error] code: message` line.

OpenAI's Chat Completions (llm_app.http.openai.wire) are two more classes with these methods.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_app.errors import AppError
from llm_app.model.answer import Done, Item, Progress, Text

JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json"}
SSE_HEADERS: Mapping[str, str] = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}
SSE_DONE = b"data: [DONE]\n\n"
TEXT_HEADERS: Mapping[str, str] = {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    # Sent chunk by chunk by the streaming door; joined by the buffered one.
    body: Iterator[bytes]


class Renderer(Protocol):
    """One wire format of an answer."""

    # The 200 response's headers (the answer's own join them).
    headers: Mapping[str, str]

    def render(self, item: Item) -> bytes | None:
        """The bytes for one item (None: nothing to send yet). `Done` is always last."""
        ...

    def failed(self, error: AppError) -> bytes:
        """The last bytes of a response already begun, for an error after its first byte."""
        ...


@dataclass
class JsonAnswer:
    headers: Mapping[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))
    pieces: list[str] = field(default_factory=list)

    def render(self, item: Item) -> bytes | None:
        if isinstance(item, Text):
            self.pieces.append(item.text)
        elif isinstance(item, Done):
            return json_body(self.body("".join(self.pieces).strip(), item))
        return None

    def body(self, answer: str, done: Done) -> Mapping[str, Any]:
        """The JSON object of the whole answer (OpenAI's renderer has its own)."""
        return {"answer": answer, **closing_fields(done)}

    def failed(self, error: AppError) -> bytes:  # never: the body is sent whole, at Done
        return error_body(error)


class ServerSentEvents:
    headers: Mapping[str, str] = SSE_HEADERS

    def __init__(self, model: str, request_id: str) -> None:
        self.chunk = ChunkBuilder(model, request_id)
        self.role: dict[str, str] = {"role": "assistant"}  # the first chunk's, as OpenAI does

    def render(self, item: Item) -> bytes:
        if isinstance(item, Progress):
            return sse({"done": item.done, "total": item.total}, event="progress")
        if isinstance(item, Text):
            delta, self.role = {**self.role, "content": item.text}, {}
            return sse(self.chunk.delta(delta))
        rest = closing_fields(item)
        last = self.chunk.delta({}, rest.pop("finish_reason"))
        last["usage"] = rest.pop("usage")
        return sse({**last, **rest}) + SSE_DONE

    def failed(self, error: AppError) -> bytes:
        return sse({"error": {"code": error.code.value, "message": error.message}})


@dataclass
class ChunkBuilder:
    """OpenAI's `chat.completion.chunk` objects of one answer: the seed's stream and the
    OpenAI route's (llm_app.http.openai.wire) both send them."""

    model: str
    request_id: str
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        """The request's id, so a client's completion id finds the function's log line."""
        return f"chatcmpl-{self.request_id}"

    def chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def delta(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """A chunk of the one choice."""
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self.chunk([choice])


class PlainText:
    headers: Mapping[str, str] = TEXT_HEADERS

    def render(self, item: Item) -> bytes | None:
        if isinstance(item, Text):
            return item.text.encode("utf-8")
        return b"\n" if isinstance(item, Done) else None

    def failed(self, error: AppError) -> bytes:
        return f"\n[error] {error.code.value}: {error.message}\n".encode()


def closing_fields(done: Done) -> dict[str, Any]:
    """The answer's fields, then the two every answer closes with (contract order)."""
    return {**done.fields, "finish_reason": done.finish_reason, "usage": done.usage.as_json()}


def sse(data: Mapping[str, Any], *, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def json_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def error_body(error: AppError) -> bytes:
    return json_body({"error": {"code": error.code.value, "message": error.message}})


def error_response(error: AppError) -> HttpResponse:
    """An error before the first byte: its code's status, its headers, `{"error": ...}`."""
    headers = {**JSON_HEADERS, **error.headers}
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    return HttpResponse(error.status, headers, iter((error_body(error),)))
