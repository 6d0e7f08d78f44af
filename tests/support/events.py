"""Helpers the function tests import: real Function URL events, the fake endpoint's limits.

Kept out of conftest.py, which holds fixtures only: each test folder has a conftest of its
own, so ``from conftest import ...`` would depend on which of them was imported first.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"
ENDPOINT_NAME = "tgi-test-endpoint"
# The fake endpoint's limits, as Terraform sets them for TinyLlama (2048 context, 700 new).
MAX_INPUT_TOKENS = 1348
MAX_TOTAL_TOKENS = 2048


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def function_url_event(
    body: str | bytes | None = '["What is the capital of France?"]',
    *,
    method: str = "POST",
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    content_type: str | None = "application/x-www-form-urlencoded",
) -> dict[str, Any]:
    """A real payload-2.0 event (tests/events) with the parts a test varies replaced."""
    event = copy.deepcopy(load_event("function_url_post"))
    event["requestContext"]["http"]["method"] = method
    headers = event["headers"]
    headers.pop("content-type", None)
    if content_type:
        headers["content-type"] = content_type
    if body is None:
        event.pop("body")
        headers.pop("content-length", None)
    else:
        raw = body if isinstance(body, bytes) else body.encode()
        headers["content-length"] = str(len(raw))
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            base64_body = True  # Lambda base64-encodes bodies that are not text
        event["body"] = base64.b64encode(raw).decode() if base64_body else text
    event["isBase64Encoded"] = base64_body
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return event


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    aws_request_id: str = "6c1f8a2e-3b7d-4e0f-9a51-2d8c7b6e4f10"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/25/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 180_000


def function_env(endpoint_url: str, **overrides: str) -> dict[str, str]:
    """The environment Terraform gives the functions, pointed at local fakes."""
    return {
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "MAX_INPUT_TOKENS": str(MAX_INPUT_TOKENS),
        "MAX_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": "test",
        "HISTORY_TABLE_NAME": "",
        **overrides,
    }


def response_json(response: dict[str, Any]) -> Any:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])


def create_history_table(client: Any, name: str) -> None:
    """The chat history table with the key schema the root module's Terraform creates."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "session_id", "AttributeType": "S"},
            {"AttributeName": "turn_id", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "session_id", "KeyType": "HASH"},
            {"AttributeName": "turn_id", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
