"""The request loop both handlers share: route by method, map errors, log one line."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from llm_app import metrics, tracing
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.function_url import HttpRequest, error_response, json_response, read_request

Route = Callable[[HttpRequest], Mapping[str, Any]]


def serve(
    event: object,
    *,
    routes: Mapping[str, Route],
    settings: Settings,
    logger: Logger,
) -> dict[str, Any]:
    """Answer one Function URL event; never raises, never leaks a stack trace to the caller."""
    started = time.perf_counter()
    method = "?"
    tracing.request_started()
    try:
        request = read_request(event, max_body_bytes=settings.max_body_bytes)
        method = request.method
        route = routes.get(request.method)
        if route is None:
            allowed = ", ".join(sorted(routes))
            raise AppError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.method} is not supported here; use {allowed}.",
                headers={"allow": allowed},
            )
        response = json_response(200, route(request))
        error_code = None
    except AppError as error:
        response = error_response(error)
        error_code = error.code.value
        if error.status >= 500:
            logger.warning("request failed upstream", extra={"error_message": error.message})
    except Exception:
        logger.exception("unhandled error")
        response = error_response(
            AppError(
                ErrorCode.INTERNAL_ERROR,
                "The function failed unexpectedly; its log has the details for this request.",
            )
        )
        error_code = ErrorCode.INTERNAL_ERROR.value
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info(
        "request",
        extra={
            "method": method,
            "status": response["statusCode"],
            "error_code": error_code,
            "duration_ms": duration_ms,
        },
    )
    metrics.request_finished(response["statusCode"], error_code, duration_ms)
    tracing.request_finished(error_code)
    return response
