"""Function URL events and the Lambda context, as the function tests hand them to handlers.

Events come from the Lambda sandbox's one payload-2.0 builder (``request_event``); the saved
events in tests/events are real payloads, which tests/function_urls checks the builder against.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tools.lambda_sandbox.events import iam_authorizer, request_event
from tools.lambda_sandbox.runtime import LambdaContext
from tools.paths import REPO_ROOT

EVENTS = REPO_ROOT / "tests" / "events"
REQUEST_ID = "6c1f8a2e-3b7d-4e0f-9a51-2d8c7b6e4f10"
FUNCTION_NAME = "test-function"
# Two signed callers of an AWS_IAM URL, as Lambda reports them: an IAM user (the saved event's)
# and an assumed role's session in the same account.
ALICE = iam_authorizer(
    "AIDACKCEVSQ6C2EXAMPLE",
    "arn:aws:iam::123456789012:user/alice",
    account_id="123456789012",
    access_key="AKIAIOSFODNN7EXAMPLE",
)
BOB = iam_authorizer(
    "AROA3XFRBF535PLBIFPI4:bob@example.com",
    "arn:aws:sts::123456789012:assumed-role/ChatUsers/bob@example.com",
    account_id="123456789012",
    access_key="ASIA3XFRBF535EXAMPLE",
)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def function_url_event(
    body: str | bytes | None = '["What is the capital of France?"]',
    *,
    method: str = "POST",
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    content_type: str | None = "application/x-www-form-urlencoded",
    caller: dict[str, Any] | None = ALICE,
    accept: str | None = None,
    authorization: str | None = None,
) -> dict[str, Any]:
    """A curl request's event (curl's default content type) with the parts a test varies.

    ``caller``: who signed it (an AWS_IAM URL); None for a request to a public URL.
    ``accept``: the accept header instead of curl's `*/*`.
    ``authorization``: the header a bearer sends (`Bearer <key or token>`).
    """
    event = request_event(
        body,
        method=method,
        query=query,
        content_type=content_type,
        base64_body=base64_body,
        request_id=REQUEST_ID,
        iam=caller,
    )
    if accept is not None:
        event["headers"]["accept"] = accept
    if authorization is not None:
        event["headers"]["authorization"] = authorization
    return event


def lambda_context(seconds_left: float = 180) -> LambdaContext:
    """The context object the Python runtime passes, with three minutes left by default."""
    return LambdaContext(
        REQUEST_ID,
        deadline_ms=int((time.time() + seconds_left) * 1000),
        invoked_function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION_NAME}",
        function_name=FUNCTION_NAME,
        memory_limit_in_mb="1024",
        log_group_name=f"/aws/lambda/{FUNCTION_NAME}",
        log_stream_name="2026/11/25/[$LATEST]0123456789abcdef",
    )


def response_json(response: dict[str, Any]) -> Any:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])
