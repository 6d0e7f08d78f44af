"""Door 2: the function as an ASGI app behind AWS's Lambda Web Adapter (response streaming).

The adapter (LWA, /opt/bootstrap) starts the zip's `run.sh` (llm_app.http.server serves this
app), polls `GET /` until it answers, then forwards each Function URL request as HTTP to
127.0.0.1 and streams the response back.
This module serves a function module's `ROUTES` (the same routes, settings and logger as its
buffered `handler`) through `llm_app.http.edge.respond`: HTTP in, the same `HttpRequest`; the
`HttpResponse` body sent chunk by chunk as the domain yields it. It decides nothing else.

- Who calls: only the `x-amzn-request-context` header (the URL event's `requestContext`,
  `authorizer.iam` included) says so; LWA sets it and overwrites a client's copy. A request
  without it never reaches the routes: it is LWA's readiness check (`GET` on
  AWS_LWA_READINESS_CHECK_PATH, default `/`), a SnapStart hook (the paths named by
  AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH / AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH; after a
  restore, `random` is reseeded as llm_app.runtime.snap_start explains), or refused with 403.
- The request id, deadline and function come from `x-amzn-lambda-context`; Powertools' Logger
  gets them as from the Lambda context, so the log lines look like the buffered handler's.
- The domain's work blocks (boto3): it runs on worker threads, one `next()` at a time, never
  on the event loop. A client that disconnects stops the answer at its next piece (chat then
  stores nothing).
- The buffered handler never imports this module, so it never loads asyncio.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.edge import HttpResponse, Route, respond
from llm_app.http.renderers import error_body, error_headers
from llm_app.http.request import (
    HttpRequest,
    LambdaContextHeader,
    check_body_size,
    request_from_context,
)
from llm_app.model.answer import close_iterator
from llm_app.runtime.snap_start import reseed_random

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"


class FunctionApp:
    """The ASGI app of one function: its routes, behind the Lambda Web Adapter."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        settings: Settings,
        logger: Logger,
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.readiness_path = settings.aws_lwa_readiness_check_path or "/"
        self.hooks: dict[str, Callable[[], None]] = {}
        if path := settings.aws_lwa_snapstart_before_checkpoint_path:
            self.hooks[path] = lambda: None  # nothing to undo before the snapshot
        if path := settings.aws_lwa_snapstart_after_restore_path:
            self.hooks[path] = reseed_random

        @logger.inject_lambda_context(clear_state=True)
        def handle(read: Callable[[], HttpRequest], context: LambdaContextHeader) -> HttpResponse:
            return respond(read, routes=routes, settings=settings, logger=logger)

        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websockets
        headers = _headers(scope)
        request_context = headers.get(REQUEST_CONTEXT_HEADER)
        if request_context is None:
            await self._not_from_url(scope, send)
            return
        body, too_large = await _read_body(receive, self.settings.max_body_bytes)
        lambda_context = LambdaContextHeader(headers.get(LAMBDA_CONTEXT_HEADER))

        def read() -> HttpRequest:
            if too_large is not None:
                check_body_size(too_large, self.settings.max_body_bytes)
            try:  # JSON in UTF-8 (ASGI hands header values over as bytes, read as latin-1)
                context = json.loads(request_context.encode("latin-1"))
            except ValueError:
                context = None
            return request_from_context(
                context,
                body=body,
                query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                accept=headers.get("accept", ""),
                deadline=lambda_context.deadline,
                trace_header=lambda_context.xray_trace_id,
            )

        response = await asyncio.to_thread(self._handle, read, lambda_context)
        await _send_response(response, receive, send)

    async def _not_from_url(self, scope: Scope, send: Send) -> None:
        """LWA's own calls (readiness, SnapStart hooks); anything else is refused."""
        path = scope.get("path", "")
        hook = self.hooks.get(path)
        if hook is not None:
            hook()
            await _send_whole(send, 200, {"content-type": "text/plain"}, b"ok\n")
        elif path == self.readiness_path and scope.get("method") == "GET":
            await _send_whole(send, 200, {"content-type": "text/plain"}, b"ready\n")
        else:
            refused = AppError(
                ErrorCode.NO_CALLER_IDENTITY,
                "This app answers only requests the function's URL forwards through the "
                "Lambda Web Adapter (no x-amzn-request-context header).",
            )
            await _send_whole(send, refused.status, error_headers(refused), error_body(refused))


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, names lower-cased (ASGI's), the last of repeated ones."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, int | None]:
    """The request body; past `limit` it is drained and only its size kept (answered 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), (size if size > limit else None)


async def _send_whole(send: Send, status: int, headers: Mapping[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
    await send({"type": "http.response.body", "body": body})


async def _send_response(response: HttpResponse, receive: Receive, send: Send) -> None:
    """Send the body chunk by chunk as the domain yields it, each `next()` off the loop."""
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.create_task(watch())
    body: Iterator[bytes] = response.body
    try:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": _raw(response.headers),
            }
        )
        while not disconnected.is_set():
            chunk = await asyncio.to_thread(next, body, None)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        await asyncio.to_thread(close_iterator, body)


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
