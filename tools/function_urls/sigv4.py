"""Sign OpenAI SDK requests for a Function URL whose auth type is AWS_IAM (SigV4, `lambda`).

    import httpx
    from openai import OpenAI

    client = OpenAI(
        base_url="https://<url-id>.lambda-url.<region>.on.aws/v1",
        api_key="unused",  # the signature replaces the bearer token
        http_client=httpx.Client(auth=FunctionUrlSigV4("<region>")),
    )

The same auth serves `httpx.AsyncClient` (AsyncOpenAI) and LangChain's ChatOpenAI
(`http_client=` / `http_async_client=`). Credentials come from botocore's usual chain
(environment, profile, SSO, instance role) and are read again for each request, so
temporary ones refresh. The caller needs lambda:InvokeFunctionUrl and (for URLs created
since October 2025) lambda:InvokeFunction on the function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator

import botocore.session
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# Only what no proxy on the way rewrites is signed (not connection or accept-encoding).
SIGNED_HEADERS = ("host", "content-type")


class FunctionUrlSigV4(httpx.Auth):
    """An httpx auth that signs each request with SigV4 for service `lambda`."""

    requires_request_body = True  # the signature covers the body's SHA-256

    def __init__(self, region: str, credentials: Credentials | None = None) -> None:
        self.region = region
        found = credentials or botocore.session.get_session().get_credentials()
        if found is None:
            raise ValueError("No AWS credentials found (environment, profile or role).")
        self._credentials = found

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        signed = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() in SIGNED_HEADERS},
        )
        # The payload's hash as a header too: what Function URLs behind CloudFront require.
        signed.headers["x-amz-content-sha256"] = hashlib.sha256(request.content).hexdigest()
        frozen = self._credentials.get_frozen_credentials()
        SigV4Auth(frozen, "lambda", self.region).add_auth(signed)
        # Authorization replaces the SDK's bearer api_key.
        for name in ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request
