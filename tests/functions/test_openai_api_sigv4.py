"""The SigV4 recipe for the openai SDK on an AWS_IAM URL (tools/function_urls/sigv4.py).

The SDK's requests arrive on httpx's MockTransport, where each signature is checked as IAM
checks it: the canonical request rebuilt from what arrived (its signed headers, body and
date), signed again with the caller's secret, compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re

import httpx
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tools.function_urls.sigv4 import FunctionUrlSigV4

REGION = "eu-west-1"
CREDENTIALS = Credentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"
)
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(?P<date>\d{8})/eu-west-1/lambda/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "tinyllama",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
    ],
}


def signature_problem(request: httpx.Request) -> str | None:
    """What is wrong with the request's SigV4 signature (None: it is the caller's)."""
    match = AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
    if match is None:
        return f"no SigV4 authorization: {request.headers.get('authorization')!r}"
    signed = match["signed"].split(";")
    if not {"host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"} <= set(signed):
        return f"signed headers {signed}"
    if request.headers["x-amz-content-sha256"] != hashlib.sha256(request.content).hexdigest():
        return "the payload hash is not the body's"
    rebuilt = AWSRequest(
        method=request.method,
        url=str(request.url),
        data=request.content,
        headers={name: request.headers[name] for name in signed},
    )
    rebuilt.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(CREDENTIALS.get_frozen_credentials(), "lambda", REGION)
    expected = auth.signature(
        auth.string_to_sign(rebuilt, auth.canonical_request(rebuilt)), rebuilt
    )
    return None if expected == match["signature"] else "the signature does not match"


class SigningCheck:
    """A loopback URL that answers 403 to a request IAM would refuse, as a Function URL does."""

    def __init__(self) -> None:
        self.problems: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        problem = signature_problem(request)
        self.problems.append(problem)
        if problem is not None:
            return httpx.Response(403, json={"Message": "Forbidden"})
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": []})
        return httpx.Response(200, json=COMPLETION)


BASE_URL = "https://abcdefghij.lambda-url.eu-west-1.on.aws/v1"
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def signed_client(credentials: Credentials, check: SigningCheck) -> openai.OpenAI:
    auth = FunctionUrlSigV4(REGION, credentials)
    http = httpx.Client(auth=auth, transport=httpx.MockTransport(check))
    return openai.OpenAI(base_url=BASE_URL, api_key="unused", http_client=http, max_retries=0)


def test_the_sdks_requests_are_signed_for_lambda() -> None:
    check = SigningCheck()
    client = signed_client(CREDENTIALS, check)
    answer = client.chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Paris."
    assert list(client.models.list()) == []  # a GET: the empty body's hash is signed
    assert check.problems == [None, None]


def test_the_async_sdks_requests_are_signed_too() -> None:
    check = SigningCheck()

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return check(request)

    async def ask() -> str | None:
        client = openai.AsyncOpenAI(
            base_url=BASE_URL,
            api_key="unused",
            http_client=httpx.AsyncClient(
                auth=FunctionUrlSigV4(REGION, CREDENTIALS), transport=httpx.MockTransport(handler)
            ),
            max_retries=0,
        )
        answer = await client.chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
        return answer.choices[0].message.content

    assert asyncio.run(ask()) == "Paris."
    assert check.problems == [None]


def test_the_check_refuses_what_iam_would() -> None:
    """The checker is no rubber stamp: a changed body, or another secret, is refused."""
    body = json.dumps({"model": "tinyllama", "messages": HELLO}).encode()
    sent = httpx.Request("POST", f"{BASE_URL}/chat/completions", content=body)
    signed = next(FunctionUrlSigV4(REGION, CREDENTIALS).auth_flow(sent))
    assert signature_problem(signed) is None

    tampered = httpx.Request("POST", signed.url, headers=signed.headers, content=body + b" ")
    assert signature_problem(tampered) == "the payload hash is not the body's"

    other = Credentials("AKIDEXAMPLE", "another-secret", "session-token")
    forged = next(FunctionUrlSigV4(REGION, other).auth_flow(sent))
    assert signature_problem(forged) == "the signature does not match"

    client = signed_client(other, SigningCheck())
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="tinyllama", messages=HELLO)  # type: ignore[arg-type]
