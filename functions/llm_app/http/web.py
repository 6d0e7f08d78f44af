"""Door 2: the function as an ASGI app behind AWS's Lambda Web Adapter (response streaming).

The adapter (LWA, /opt/bootstrap) starts the zip's `run.sh` (llm_app.http.server), polls
`GET /` until it answers, then forwards each Function URL request as HTTP to 127.0.0.1 and
streams the response back. A converter only: HTTP in, an `HttpRequest` to
`llm_app.http.edge.respond` (the handler module's `ROUTES`, `SETTINGS`, `logger`); the
`HttpResponse` body out chunk by chunk, each `next()` on a worker thread (the domain blocks).

- Only the `x-amzn-request-context` header (the URL event's `requestContext`, which LWA sets
  and overwrites) says who calls. Without it a request is LWA's readiness check, a SnapStart
  hook (after a restore `random` is reseeded, llm_app.runtime.snap_start), or refused (403).
- `x-amzn-lambda-context` gives the request id, deadline and function, which Powertools'
  Logger gets as from a Lambda context.
- Behind the adapter the app never sees a disconnect (LWA reads the whole response and Lambda
  does not stop a stream); only when uvicorn is called directly does a disconnect stop the
  answer at its next piece."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger

from llm_app.auth.sign_in import SignIn
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.asgi import Receive, Scope, Send, headers_of, plain_text, read_body, send_response
from llm_app.http.edge import respond
from llm_app.http.renderers import HttpResponse, error_response
from llm_app.http.request import (
    HttpRequest,
    LambdaContextHeader,
    check_body_size,
    request_from_context,
)
from llm_app.http.routes import Routes
from llm_app.runtime.snap_start import reseed_random

REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"


class FunctionApp:
    """The ASGI app of one function: its routes, behind the Lambda Web Adapter."""

    def __init__(
        self,
        routes: Routes,
        settings: Settings,
        logger: Logger,
        sign_in: SignIn | None = None,
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
        def handle(
            read: Callable[[], HttpRequest], context: LambdaContextHeader, path: str
        ) -> HttpResponse:
            return respond(
                read, routes=routes, settings=settings, logger=logger, sign_in=sign_in, path=path
            )

        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan off and no websockets
        headers = headers_of(scope)
        request_context = headers.get(REQUEST_CONTEXT_HEADER)
        if request_context is None:
            await self._not_from_url(scope, receive, send)
            return
        body, too_large = await read_body(receive, self.settings.max_body_bytes)
        lambda_context = LambdaContextHeader(headers.get(LAMBDA_CONTEXT_HEADER))
        path = scope.get("path") or "/"

        def read() -> HttpRequest:
            if too_large is not None:
                check_body_size(too_large, self.settings.max_body_bytes)
            return request_from_context(
                request_context,
                body=body,
                query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                accept=headers.get("accept", ""),
                content_type=headers.get("content-type", ""),
                deadline=lambda_context.deadline,
                trace_header=lambda_context.xray_trace_id,
                authorization=headers.get("authorization"),
                path=path,
            )

        response = await asyncio.to_thread(self._handle, read, lambda_context, path)
        await send_response(response, receive, send)

    async def _not_from_url(self, scope: Scope, receive: Receive, send: Send) -> None:
        """LWA's own calls (readiness, SnapStart hooks); anything else is refused."""
        path = scope.get("path", "")
        hook = self.hooks.get(path)
        if hook is not None:
            hook()
            response = plain_text(b"ok\n")
        elif path == self.readiness_path and scope.get("method") == "GET":
            response = plain_text(b"ready\n")
        else:
            response = error_response(
                AppError(
                    ErrorCode.NO_CALLER_IDENTITY,
                    "This app answers only requests the function's URL forwards through the "
                    "Lambda Web Adapter (no x-amzn-request-context header).",
                )
            )
        await send_response(response, receive, send)
