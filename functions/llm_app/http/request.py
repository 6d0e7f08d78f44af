"""Lambda Function URL requests in (payload format 2.0 events, or LWA's HTTP requests).

`HttpRequest` is what both front doors hand the edge (llm_app.http.edge):
`read_request` builds it from a URL event (the buffered handler), `request_from_context` from
the URL event's `requestContext` that the Lambda Web Adapter forwards as a header
(llm_app.http.web).
`streaming_requested` and `plain_text_preferred` read the `accept` header: the one place the
response format is negotiated.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_app.auth.caller import Caller
from llm_app.errors import AppError, ErrorCode
from llm_app.identity import iam_caller


@dataclass(frozen=True)
class HttpRequest:
    method: str
    body: bytes
    request_id: str
    query: Mapping[str, str]
    # The signed caller of an AWS_IAM URL, "<accountId>:<userId>"; None on a public URL.
    caller: str | None = None
    # The `accept` header, as sent (empty when absent).
    accept: str = ""
    # The `content-type` header, as sent (empty when absent): JSON or a form upload (`curl -F`).
    content_type: str = ""
    # When Lambda stops the function (time.time() seconds); None where no deadline is known.
    deadline: float | None = None
    # The invocation's X-Ray trace header where the process has no _X_AMZN_TRACE_ID (door 2).
    trace_header: str | None = None
    # The `authorization` header, for the edge's sign-in only: never printed (repr) or logged.
    authorization: str | None = field(default=None, repr=False)
    # Who signed in with a bearer (llm_app.auth), set by the edge; None without bearer modes.
    bearer: Caller | None = None
    # The URL's path: the seed's routes answer on any path, others on their own.
    path: str = "/"

    def seconds_left(self, default: float) -> float:
        """Seconds until the deadline (`default` when none is known)."""
        return default if self.deadline is None else self.deadline - time.time()


def read_request(
    event: object, *, max_body_bytes: int, deadline: float | None = None
) -> HttpRequest:
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
    check_body_size(len(raw), max_body_bytes)
    # Function URLs omit queryStringParameters when there is no query string.
    query = event.get("queryStringParameters")
    accept = _dig(event, "headers", "accept")
    content_type = _dig(event, "headers", "content-type")
    authorization = _dig(event, "headers", "authorization")
    path = event.get("rawPath")
    return HttpRequest(
        method=method.upper(),
        body=raw,
        request_id=request_id if isinstance(request_id, str) else "",
        query={k: v for k, v in query.items() if isinstance(v, str)}
        if isinstance(query, Mapping)
        else {},
        caller=iam_caller(_dig(event, "requestContext", "authorizer", "iam")),
        accept=accept if isinstance(accept, str) else "",
        content_type=content_type if isinstance(content_type, str) else "",
        deadline=deadline,
        authorization=authorization if isinstance(authorization, str) else None,
        path=path if isinstance(path, str) and path else "/",
    )


def request_from_context(
    header: str,
    *,
    body: bytes,
    query: Mapping[str, str],
    accept: str,
    deadline: float | None,
    trace_header: str | None = None,
    content_type: str = "",
    authorization: str | None = None,
    path: str = "/",
) -> HttpRequest:
    """The request as the Lambda Web Adapter forwards it: the URL event's `requestContext`
    (the `x-amzn-request-context` header, which only the adapter can set) says who called
    and which request this is; method, query and body are the HTTP request's own."""
    try:  # JSON in UTF-8 (ASGI hands header values over as bytes, read as latin-1)
        request_context = json.loads(header.encode("latin-1"))
    except ValueError:
        request_context = None
    method = _dig(request_context, "http", "method")
    if not isinstance(method, str):
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "The request context is not a Lambda Function URL's (payload format 2.0).",
        )
    request_id = _dig(request_context, "requestId")
    return HttpRequest(
        method=method.upper(),
        body=body,
        request_id=request_id if isinstance(request_id, str) else "",
        query=query,
        caller=iam_caller(_dig(request_context, "authorizer", "iam")),
        accept=accept,
        content_type=content_type,
        deadline=deadline,
        trace_header=trace_header,
        authorization=authorization,
        path=path or "/",
    )


class LambdaContextHeader:
    """The Lambda context as LWA forwards it (JSON), with the runtime context's attributes."""

    def __init__(self, raw: str | None) -> None:
        try:
            context = json.loads(raw) if raw else {}
        except ValueError:
            context = {}
        if not isinstance(context, dict):
            context = {}
        env = context.get("env_config")
        if not isinstance(env, dict):
            env = {}
        self.aws_request_id = str(context.get("request_id", ""))
        self.invoked_function_arn = str(context.get("invoked_function_arn", ""))
        self.function_name = str(env.get("function_name", ""))
        self.memory_limit_in_mb = str(env.get("memory", ""))
        self.function_version = str(env.get("version", ""))
        deadline_ms = context.get("deadline")
        # time.time() seconds; LWA sends milliseconds since the epoch.
        self.deadline = deadline_ms / 1000 if isinstance(deadline_ms, int | float) else None
        trace = context.get("xray_trace_id")
        self.xray_trace_id = trace if isinstance(trace, str) and trace else None


def check_body_size(size: int, max_body_bytes: int) -> None:
    if size > max_body_bytes:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"The request body is {size} bytes; the limit is {max_body_bytes}.",
        )


def _media_types(accept: str) -> set[str]:
    """The media types an `accept` header lists, without parameters (q-values ignored)."""
    return {item.split(";", 1)[0].strip().lower() for item in accept.split(",")}


def streaming_requested(accept: str, stream_field: bool) -> bool:
    """Stream the answer: `accept: text/event-stream` or `text/plain`, or `"stream": true`."""
    return stream_field or bool(_media_types(accept) & {"text/event-stream", "text/plain"})


def plain_text_preferred(accept: str) -> bool:
    """A stream as raw text (for `curl -N`) rather than Server-Sent Events."""
    types = _media_types(accept)
    return "text/plain" in types and "text/event-stream" not in types


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
            # json's own message may end in "at" ("Invalid control character at"): say it once.
            f"The request body is not valid JSON ({error.msg.removesuffix(' at')} at line "
            f"{error.lineno} column {error.colno}); send e.g. "
            '["What is the capital of France?"].',
        ) from None
    except RecursionError:
        raise AppError(ErrorCode.INVALID_JSON, "The request body is nested too deeply.") from None


def _dig(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
