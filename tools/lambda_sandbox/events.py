"""Lambda's payload format 2.0 for Function URLs, both ways: HTTP request -> event, result -> HTTP.

The one event builder of the repository: the local Function URLs turn each HTTP request into an
event with ``build_event``; the bench, the packaging tests and the function tests build theirs
with ``request_event`` (a curl-like request through the same code). ``map_response`` is
Lambda's mapping of a handler's result back to HTTP. Standard library only.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

_TEXT_TYPES = ("application/json", "application/javascript", "application/xml")
# What request_event's requests look like they came from: a URL in eu-west-1, curl, a client.
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"
URL_HOST = f"{URL_ID}.lambda-url.eu-west-1.on.aws"
CLIENT_IP = "203.0.113.7"
# The account of the callers local URLs report (moto's default account).
LOCAL_ACCOUNT_ID = "123456789012"


def iam_authorizer(
    user_id: str, user_arn: str, *, account_id: str = LOCAL_ACCOUNT_ID, access_key: str = ""
) -> dict[str, Any]:
    """``requestContext.authorizer.iam`` of an AWS_IAM URL's event: who signed the request."""
    return {
        "accessKey": access_key,
        "accountId": account_id,
        "callerId": user_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": user_arn,
        "userId": user_id,
    }


def local_caller(access_key: str) -> dict[str, Any]:
    """The caller a local AWS_IAM URL reports: signatures are not verified, so the signing
    access key id stands for the principal (two keys, two callers)."""
    return iam_authorizer(
        f"AIDALOCAL{access_key}",
        f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{access_key}",
        access_key=access_key,
    )


def request_event(
    body: str | bytes | None = None,
    *,
    method: str = "POST",
    path: str = "/",
    query: Mapping[str, str] | None = None,
    content_type: str | None = "application/json",
    base64_body: bool | None = None,
    request_id: str | None = None,
    iam: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event a Function URL passes for a curl-like request with this body.

    ``iam``: the signed caller of an AWS_IAM URL (``iam_authorizer``); None for a public URL.
    """
    raw = body.encode() if isinstance(body, str) else (body or b"")
    headers = [("host", URL_HOST), ("user-agent", "curl/8.5.0"), ("accept", "*/*")]
    if content_type:
        headers.append(("content-type", content_type))
    if body is not None:
        headers.append(("content-length", str(len(raw))))
    target = f"{path}?{urlencode(query)}" if query else path
    return build_event(
        HttpRequest(method, target, headers, raw, CLIENT_IP),
        request_id=request_id or str(uuid.uuid4()),
        url_id=URL_ID,
        base64_body=base64_body,
        forwarded_proto="https",
        iam=iam,
    )


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as a Function URL receives it."""

    method: str
    target: str  # path?query
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str


def build_event(
    request: HttpRequest,
    *,
    request_id: str,
    url_id: str,
    now: float | None = None,
    base64_body: bool | None = None,
    forwarded_proto: str = "http",
    iam: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event a Function URL passes to the function for this HTTP request.

    ``base64_body`` None: base64 unless the content type is text, as Lambda decides.
    """
    now = time.time() if now is None else now
    split = urlsplit(request.target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    host = merged.get("host", "localhost")
    merged.setdefault("x-forwarded-proto", forwarded_proto)
    merged.setdefault("x-forwarded-for", request.source_ip)
    merged.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    merged.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path or "/",
        "rawQueryString": split.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if split.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": iam["accountId"] if iam else "anonymous",
        "apiId": url_id,
        "domainName": host,
        "domainPrefix": url_id,
        "http": {
            "method": request.method,
            "path": split.path or "/",
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if iam:
        event["requestContext"]["authorizer"] = {"iam": dict(iam)}
    body = request.body
    if body:
        by_type = base64_body is None
        if by_type:
            base64_body = not is_text_content_type(merged.get("content-type"))
        if not base64_body:
            try:
                event["body"] = body.decode("utf-8", errors="replace" if by_type else "strict")
            except UnicodeDecodeError:
                base64_body = True  # forced text, but not text: Lambda would encode it
        if base64_body:
            event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = base64_body
    else:
        event["isBase64Encoded"] = False
    return event


def is_text_content_type(content_type: str | None) -> bool:
    """Bodies of these types reach the function as text; all others base64-encoded."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


class BadResponseError(Exception):
    """The function returned something a Function URL cannot turn into HTTP."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def map_response(payload: str) -> HttpResponse:
    """Lambda's Function URL response mapping of a handler's JSON result."""
    try:
        result = json.loads(payload)
    except ValueError as error:
        raise BadResponseError(f"the result is not JSON: {error}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        # "If your function returns valid JSON and doesn't return a statusCode, Lambda
        # assumes" a 200 with the result as an application/json body.
        return HttpResponse(200, [("Content-Type", "application/json")], payload.encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponseError(f"statusCode must be an HTTP status integer, not {status!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadResponseError("headers must be an object")
    for name, value in raw_headers.items():
        if isinstance(value, dict | list):
            raise BadResponseError(f"header {name!r} must be a string")
        headers.append((str(name), _header_text(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    return HttpResponse(status, headers, _response_body(result))


def _response_body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadResponseError("body must be a string")
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as error:
            raise BadResponseError(f"body is marked base64 but is not: {error}") from None
    return body.encode("utf-8")


def _header_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
