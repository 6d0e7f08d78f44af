"""The request loop both front doors share: route by method, render, map errors, log one line.

`respond` turns an `HttpRequest` into an `HttpResponse` whose body is an iterator of bytes:
- a route's value (a mapping) -> 200 JSON;
- a route's `Answer` (llm_app.model.answer) -> today's JSON (`{"answer": ..., **fields}`) unless
  the answer streams: then Server-Sent Events (an OpenAI `chat.completion.chunk` per piece,
  `event: progress` for QA's long chains, a last chunk with `finish_reason`, `usage` and the
  answer's fields, then `data: [DONE]`), or raw text when `accept: text/plain` is preferred;
- an AppError before the first part -> the code's status and `{"error": {"code", "message"}}`;
  after it, one `data: {"error": ...}` event (text: a last `[error] code: message` line) and
  the stream ends without `[DONE]`: a stream never just stops.

Door 1 (`serve`, the buffered Lambda handler) joins the body into one Function URL response
(SSE too: the same bytes, delivered whole). Door 2 (llm_app.http.web) sends each chunk as it comes.
The request's log line is written when the body has been sent (or abandoned).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.request import (
    JSON_HEADERS,
    HttpRequest,
    error_response,
    plain_text_preferred,
    read_request,
)
from llm_app.model.answer import Answer, Part, Progress, Usage, close_iterator, joined_text
from llm_app.redaction import exception_summary, loggable_message
from llm_app.runtime import metrics, tracing

Route = Callable[[HttpRequest], Mapping[str, Any] | Answer]

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}
TEXT_HEADERS = {"content-type": "text/plain; charset=utf-8", "cache-control": "no-cache"}


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    # Sent chunk by chunk by the streaming door; joined by the buffered one.
    body: Iterator[bytes]


def deadline_of(context: Any) -> float:
    """When Lambda stops this invocation (time.time() seconds), from the runtime's context."""
    return time.time() + float(context.get_remaining_time_in_millis()) / 1000


def serve(
    event: object,
    *,
    routes: Mapping[str, Route],
    settings: Settings,
    logger: Logger,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Door 1: answer one Function URL event whole; never raises, never leaks a stack trace."""
    response = respond(
        lambda: read_request(event, max_body_bytes=settings.max_body_bytes, deadline=deadline),
        routes=routes,
        settings=settings,
        logger=logger,
    )
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": b"".join(response.body).decode("utf-8"),
    }


def respond(
    read: Callable[[], HttpRequest],
    *,
    routes: Mapping[str, Route],
    settings: Settings,
    logger: Logger,
) -> HttpResponse:
    """Answer one request; never raises. `read` builds the request (its errors are answered)."""
    log = _RequestLog(logger, log_prompts=settings.log_prompts)
    try:
        request = read()
        tracing.request_started(request.trace_header)
        log.method = request.method
        route = routes.get(request.method)
        if route is None:
            allowed = ", ".join(sorted(routes))
            raise AppError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.method} is not supported here; use {allowed}.",
                headers={"allow": allowed},
            )
        result = route(request)
        if not isinstance(result, Answer):
            return log.whole(_json(200, result))
        log.keys = result.log_keys  # the domain may add to them until the answer ends
        if not result.streamed:
            text = joined_text(result.parts)
            return log.whole(_json(200, {"answer": text, **result.fields}))
        # Errors until the first part keep their status: nothing has been sent yet.
        parts = iter(result.parts)
        first = next(parts, None)
    except AppError as error:
        return log.whole(error_response(error), error)
    except Exception as error:
        log.unhandled("unhandled error", error)
        return log.whole(error_response(_internal_error()), _internal_error())
    stream: StreamFormat
    if plain_text_preferred(request.accept):
        stream = PlainText()
    else:
        stream = ServerSentEvents(settings.endpoint_name, request.request_id)
    body = log.streamed(_stream_body(stream, result, first, parts))
    return HttpResponse(200, {**stream.headers, **result.headers}, body)


def _json(status: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(payload, ensure_ascii=False),
    }


def _internal_error() -> AppError:
    return AppError(
        ErrorCode.INTERNAL_ERROR,
        "The function failed unexpectedly; its log has the details for this request.",
    )


# ---------------------------------------------------------------------------------------------
# Streamed renderings: errors after the first byte become the stream's last event
# ---------------------------------------------------------------------------------------------
class StreamFormat(Protocol):
    headers: Mapping[str, str]

    def part(self, part: Part) -> bytes | None: ...
    def end(self, fields: Mapping[str, Any]) -> bytes: ...
    def error(self, error: AppError) -> bytes: ...


class ServerSentEvents:
    """OpenAI `chat.completion.chunk` events, QA's `event: progress`, then `data: [DONE]`."""

    headers: Mapping[str, str] = SSE_HEADERS

    def __init__(self, model: str, request_id: str) -> None:
        self.model = model
        self.completion_id = f"chatcmpl-{request_id}"
        self.created = int(time.time())
        self.role: dict[str, str] = {"role": "assistant"}  # the first chunk's, as OpenAI does

    def _chunk(self, delta: Mapping[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def part(self, part: Part) -> bytes:
        if isinstance(part, Progress):
            return _sse({"done": part.done, "total": part.total}, event="progress")
        delta, self.role = {**self.role, "content": part}, {}
        return _sse(self._chunk(delta, None))

    def end(self, fields: Mapping[str, Any]) -> bytes:
        """The last chunk: finish_reason, usage in OpenAI's names, the answer's other fields."""
        rest = dict(fields)
        last = self._chunk({}, rest.pop("finish_reason", None))
        last["usage"] = Usage(**rest.pop("usage", {})).as_openai()
        return _sse({**last, **rest}) + b"data: [DONE]\n\n"

    def error(self, error: AppError) -> bytes:
        return _sse({"error": {"code": error.code.value, "message": error.message}})


class PlainText:
    """The answer's text as it comes (for `curl -N`), a newline at its end."""

    headers: Mapping[str, str] = TEXT_HEADERS

    def part(self, part: Part) -> bytes | None:
        return part.encode("utf-8") if isinstance(part, str) else None

    def end(self, fields: Mapping[str, Any]) -> bytes:
        return b"\n"

    def error(self, error: AppError) -> bytes:
        return f"\n[error] {error.code.value}: {error.message}\n".encode()


def _sse(data: Mapping[str, Any], *, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class _StreamFailed(Exception):
    """A stream's failure after its first byte: the last event to send, and what to log."""

    def __init__(self, error: AppError | None, event: bytes) -> None:
        super().__init__(error)
        self.error = error
        self.event = event


def _stream_body(
    stream: StreamFormat, answer: Answer, first: Part | None, parts: Iterator[Part]
) -> Iterator[bytes]:
    """The answer in `stream`'s format; a failure raises _StreamFailed with its last event.

    Closing this iterator (a client gone) closes the answer's parts: the domain stops, and
    chat stores nothing.
    """
    try:
        if first is not None:
            for part in itertools.chain((first,), parts):
                if (data := stream.part(part)) is not None:
                    yield data
        yield stream.end(answer.fields)
    except AppError as error:
        raise _StreamFailed(error, stream.error(error)) from error
    except Exception as error:
        raise _StreamFailed(None, stream.error(_internal_error())) from error
    finally:
        close_iterator(parts)


# ---------------------------------------------------------------------------------------------
# The request's log line
# ---------------------------------------------------------------------------------------------
class _RequestLog:
    """One `request` line per request: method, status, error code, duration.

    Without log_prompts no line quotes outside text: an AppError's `log_message`, and an
    unexpected exception's traceback without its messages (llm_app.redaction).
    """

    def __init__(self, logger: Logger, *, log_prompts: bool) -> None:
        self.logger = logger
        self.log_prompts = log_prompts
        self.started = time.perf_counter()
        self.method = "?"
        self.keys: Mapping[str, Any] = {}

    def whole(self, response: Mapping[str, Any], error: AppError | None = None) -> HttpResponse:
        if error is not None and error.status >= 500:
            self.logger.warning("request failed upstream", extra=self._error_message(error))
        self.write(response["statusCode"], error, streamed=False)
        body = response["body"].encode("utf-8")
        return HttpResponse(response["statusCode"], dict(response["headers"]), iter((body,)))

    def streamed(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        error: AppError | None = None
        completed = False
        try:
            yield from chunks
            completed = True
        except _StreamFailed as failure:
            error = failure.error
            if error is None:
                self.unhandled("unhandled error while streaming", failure.__cause__ or failure)
                error = _internal_error()
            elif error.status >= 500:
                self.logger.warning("stream failed upstream", extra=self._error_message(error))
            yield failure.event
        finally:
            self.write(200, error, streamed=True, completed=completed)

    def unhandled(self, message: str, error: BaseException) -> None:
        # Not logger.exception: an exception's message may quote the question or the reply.
        summary = exception_summary(error, log_prompts=self.log_prompts)
        self.logger.error(message, extra={"traceback": summary})

    def _error_message(self, error: AppError) -> dict[str, str]:
        return {"error_message": loggable_message(error, log_prompts=self.log_prompts)}

    def write(
        self,
        status: int,
        error: AppError | None,
        *,
        streamed: bool,
        completed: bool = True,
    ) -> None:
        extra: dict[str, Any] = {
            "method": self.method,
            "status": status,
            "error_code": None if error is None else error.code.value,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        if streamed:
            extra["streamed"] = True
            extra["completed"] = completed
        if self.keys:
            self.logger.append_keys(**self.keys)
        self.logger.info("request", extra=extra)
        if "history_turns" in self.keys:
            metrics.history_turns(self.keys["history_turns"])
        if "chunks" in self.keys:
            metrics.qa_chain(chunks=self.keys["chunks"])
        metrics.request_finished(status, extra["error_code"], extra["duration_ms"])
        tracing.request_finished(extra["error_code"])
