"""Door 1: the buffered Lambda handler of a function's routes (a Function URL, payload 2.0).

    handler = function_url_handler(ROUTES, SETTINGS, logger)   # in a function's handler module

A converter only: the URL event becomes an `HttpRequest` (llm_app.http.request), the edge
answers it (llm_app.http.edge), and the response's body, joined, becomes the Function URL
response (a requested stream too: the same bytes, delivered whole).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from llm_app.auth.sign_in import SignIn
from llm_app.config import Settings
from llm_app.http.edge import respond
from llm_app.http.renderers import HttpResponse
from llm_app.http.request import read_request
from llm_app.http.routes import Routes

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def function_url_handler(
    routes: Routes,
    settings: Settings,
    logger: Logger,
    sign_in: SignIn | None = None,
) -> LambdaHandler:
    """The Lambda handler serving `routes` (behind `sign_in` when a bearer mode is on); it
    never raises, never leaks a stack trace."""

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        deadline = deadline_of(context)
        response = respond(
            lambda: read_request(event, max_body_bytes=settings.max_body_bytes, deadline=deadline),
            routes=routes,
            settings=settings,
            logger=logger,
            sign_in=sign_in,
            path=str(event.get("rawPath") or "/") if isinstance(event, dict) else "/",
        )
        return lambda_response(response)

    return handler


def deadline_of(context: Any) -> float:
    """When Lambda stops this invocation (time.time() seconds), from the runtime's context."""
    return time.time() + float(context.get_remaining_time_in_millis()) / 1000


def lambda_response(response: HttpResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": b"".join(response.body).decode("utf-8"),
    }
