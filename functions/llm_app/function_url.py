"""Lambda Function URL (payload format 2.0) events in, HTTP responses out."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_app.errors import AppError, ErrorCode
from llm_app.identity import iam_caller

JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    body: bytes
    request_id: str
    query: Mapping[str, str]
    # The signed caller of an AWS_IAM URL, "<accountId>:<userId>"; None on a public URL.
    caller: str | None = None


def read_request(event: object, *, max_body_bytes: int) -> HttpRequest:
    """Extract method and raw body; the body may be base64 (binary content types)."""
    http = _dig(event, "requestContext", "http")
    method = http.get("method") if isinstance(http, Mapping) else None
    if not isinstance(event, Mapping) or not isinstance(method, str):
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "The event is not a Lambda Function URL (payload format 2.0) request.",
        )
    request_id = _dig(event, "requestContext", "requestId")
    body = event.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise AppError(ErrorCode.INVALID_REQUEST, "The event's body is not a string.")
    elif event.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise AppError(
                ErrorCode.INVALID_REQUEST, "The request body is marked base64 but is not."
            ) from None
    else:
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > max_body_bytes:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"The request body is {len(raw)} bytes; the limit is {max_body_bytes}.",
        )
    # Function URLs omit queryStringParameters when there is no query string.
    query = event.get("queryStringParameters")
    return HttpRequest(
        method=method.upper(),
        body=raw,
        request_id=request_id if isinstance(request_id, str) else "",
        query={k: v for k, v in query.items() if isinstance(v, str)}
        if isinstance(query, Mapping)
        else {},
        caller=iam_caller(_dig(event, "requestContext", "authorizer", "iam")),
    )


def parse_json(body: bytes) -> Any:
    """Decode a JSON body, whatever content type curl labelled it with."""
    if not body.strip():
        raise AppError(
            ErrorCode.INVALID_JSON,
            "The request body is empty; send a JSON array such as "
            '["What is the capital of France?"].',
        )
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise AppError(ErrorCode.INVALID_JSON, "The request body is not UTF-8 text.") from None
    except json.JSONDecodeError as error:
        raise AppError(
            ErrorCode.INVALID_JSON,
            f"The request body is not valid JSON ({error.msg} at line {error.lineno} "
            f'column {error.colno}); send e.g. ["What is the capital of France?"].',
        ) from None
    except RecursionError:
        raise AppError(ErrorCode.INVALID_JSON, "The request body is nested too deeply.") from None


def json_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(payload, ensure_ascii=False),
    }


def error_response(error: AppError) -> dict[str, Any]:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    return json_response(
        error.status, {"error": {"code": error.code.value, "message": error.message}}, headers
    )


def _dig(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
