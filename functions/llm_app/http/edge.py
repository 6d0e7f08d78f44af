"""The HTTP edge both front doors share: route, render, map errors, observe.

`respond(read, routes=..., settings=..., logger=...)` answers one request and never raises:
- `read()` builds the `HttpRequest` (a door's converter; its errors are answered too);
- the method and path pick the route (`Routes`); a route returns a `Reply` (one JSON
  object) or an `Answer`, whose typed items (llm_app.model.answer) a `Renderer`
  (llm_app.http.renderers) turns into bytes: JSON unless the caller asked for a stream,
  then Server-Sent Events or plain text;
- an AppError before the renderer's first bytes is answered with its code's status (the
  one table in llm_app.errors) and `{"error": {"code", "message"}}` (a `WiredRoute`'s path:
  in its own shape, e.g. OpenAI's); after them it becomes the stream's last bytes;
- the request's log line (method, status, error code, duration, the answer's facts), its
  metrics, by name, and its trace subsegment are written once, when the body has been sent
  (or abandoned), by `RequestRecord`.

The result is an `HttpResponse` whose body is an iterator of bytes: door 1 (llm_app.http.
lambda_handler) joins it into a Function URL response, door 2 (llm_app.http.web) sends each
chunk as it comes. A new route is one more entry in a function's ROUTES; a new wire format is
one more Renderer, chosen by its route's `WireFormat` (the seed's: `renderer_for`, and
`error_response` for its errors), which the path selects before the route runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from llm_app.auth.caller import Caller
from llm_app.auth.sign_in import SignIn
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.renderers import (
    JSON_HEADERS,
    HttpResponse,
    Renderer,
    json_body,
)
from llm_app.http.request import HttpRequest
from llm_app.http.routes import SEED_WIRE, Routes, route_for, wire_for
from llm_app.model.answer import Done, Facts, Item, Reply, Text, close_iterator
from llm_app.redaction import exception_summary, loggable_message
from llm_app.runtime import metrics, tracing


def respond(
    read: Callable[[], HttpRequest],
    *,
    routes: Routes,
    settings: Settings,
    logger: Logger,
    sign_in: SignIn | None = None,
    path: str = "/",
) -> HttpResponse:
    """Answer one request (see the module docstring); never raises. `sign_in` (a bearer mode
    on) refuses a request without a valid bearer before its route runs. `path`: the URL's, as
    the door knows it before the request is read, so that every error reads as its route's
    (a body too large for `read()`, a refused sign-in included)."""
    record = RequestRecord(logger, log_prompts=settings.log_prompts)
    record.wire = wire_for(routes, path)
    items: Iterator[Item] | None = None
    try:
        request = read()
        tracing.request_started(request.trace_header)
        record.method = request.method
        if sign_in is not None:
            request = record.signed_in(sign_in, request)
        result = route_for(routes, request.method, request.path)(request)
        record.facts = record.facts + result.facts
        if isinstance(result, Reply):
            return record.whole(200, JSON_HEADERS, json_body(result.body))
        record.question = result.question
        renderer = record.wire.choose(request, result.streamed, settings)
        items = iter(result.items)
        first = _first_bytes(items, renderer, record)
        if not result.streamed:
            close_iterator(items)  # past Done: nothing more to read
            return record.whole(200, {**renderer.headers, **result.headers}, first)
    except AppError as error:
        close_iterator(items)
        return record.refused(error)
    except Exception as error:
        close_iterator(items)
        record.unhandled("unhandled error", error)
        return record.refused(internal_error())
    body = record.streamed(_streamed_body(first, items, renderer, record))
    return HttpResponse(200, {**renderer.headers, **result.headers}, body)


def internal_error() -> AppError:
    return AppError(
        ErrorCode.INTERNAL_ERROR,
        "The function failed unexpectedly; its log has the details for this request.",
    )


def _first_bytes(items: Iterator[Item], renderer: Renderer, record: RequestRecord) -> bytes:
    """Read items until the renderer has bytes to send: errors until then keep their status."""
    for item in items:
        record.saw(item)
        if (data := renderer.render(item)) is not None:
            return data
    raise RuntimeError("the answer ended without its Done item")


class _StreamFailed(Exception):
    """A stream's failure after its first byte: the last bytes to send, and what to log."""

    def __init__(self, error: AppError | None, last: bytes) -> None:
        super().__init__(error)
        self.error = error
        self.last = last


def _streamed_body(
    first: bytes, items: Iterator[Item], renderer: Renderer, record: RequestRecord
) -> Iterator[bytes]:
    """The rest of the answer; closing this iterator (a client gone, where the server sees it:
    not behind Lambda's adapter) closes the items: the domain stops, and chat stores nothing."""
    try:
        yield first
        for item in items:
            record.saw(item)
            if (data := renderer.render(item)) is not None:
                yield data
    except AppError as error:
        raise _StreamFailed(error, renderer.failed(error)) from error
    except Exception as error:
        raise _StreamFailed(None, renderer.failed(internal_error())) from error
    finally:
        close_iterator(items)


class RequestRecord:
    """One `request` log line per request (method, status, error code, duration, the answer's
    facts), its metrics and its trace subsegment.

    Without log_prompts no line quotes outside text: an AppError's `log_message`, and an
    unexpected exception's traceback without its messages (llm_app.redaction).
    """

    def __init__(self, logger: Logger, *, log_prompts: bool) -> None:
        self.logger = logger
        self.log_prompts = log_prompts
        self.sign_in: SignIn | None = None
        self.bearer: Caller | None = None
        self.started = time.perf_counter()
        self.method = "?"
        self.wire = SEED_WIRE
        self.facts = Facts()
        self.question: str | None = None
        self._text: list[str] = []

    def signed_in(self, sign_in: SignIn, request: HttpRequest) -> HttpRequest:
        """The request with its bearer caller, whom the line names (a key's name, a token's
        `sub`; never the credential); a refusal raises its AppError."""
        self.bearer = sign_in.check(request.authorization)
        self.sign_in = sign_in
        self.facts = Facts(log={"caller": self.bearer.label, "sign_in": self.bearer.method})
        return dataclasses.replace(request, bearer=self.bearer)

    def saw(self, item: Item) -> None:
        """An item on its way out: Done's facts join the line, its usage counts against the
        bearer's key; with log_prompts the exchange is logged once the answer is complete."""
        if isinstance(item, Text) and self.log_prompts:
            self._text.append(item.text)
        elif isinstance(item, Done):
            self.facts = self.facts + item.facts
            if self.sign_in is not None and self.bearer is not None:
                self.sign_in.answered(self.bearer, item.usage)
            if self.log_prompts:
                answer = "".join(self._text).strip()
                self.logger.info("exchange", extra={"question": self.question, "answer": answer})

    def whole(self, status: int, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        self.write(status, None, streamed=False)
        return HttpResponse(status, dict(headers), iter((body,)))

    def refused(self, error: AppError) -> HttpResponse:
        if error.status >= 500:
            self.logger.warning("request failed upstream", extra=self._error_message(error))
        response = self.wire.refuse(error)
        self.write(response.status, error, streamed=False)
        return response

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
                error = internal_error()
            elif error.status >= 500:
                self.logger.warning("stream failed upstream", extra=self._error_message(error))
            yield failure.last
        finally:
            self.write(200, error, streamed=True, completed=completed)

    def unhandled(self, message: str, error: BaseException) -> None:
        # Not logger.exception: an exception's message may quote the question or the reply.
        summary = exception_summary(error, log_prompts=self.log_prompts)
        self.logger.error(message, extra={"traceback": summary})

    def _error_message(self, error: AppError) -> dict[str, str]:
        return {"error_message": loggable_message(error, log_prompts=self.log_prompts)}

    def write(
        self, status: int, error: AppError | None, *, streamed: bool, completed: bool = True
    ) -> None:
        error_code = None if error is None else error.code.value
        extra: dict[str, Any] = {
            "method": self.method,
            "status": status,
            "error_code": error_code,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        if streamed:
            extra.update(streamed=True, completed=completed)
        if self.facts.log:
            self.logger.append_keys(**self.facts.log)
        self.logger.info("request", extra=extra)
        for name, value in self.facts.metrics.items():
            metrics.count(name, value)
        metrics.request_finished(status, error_code, extra["duration_ms"])
        tracing.request_finished(error_code)
