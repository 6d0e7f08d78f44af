"""The environment Terraform gives the functions, pointed at local fakes, and their table."""

from __future__ import annotations

from typing import Any

ENDPOINT_NAME = "tgi-test-endpoint"
# The fake endpoint's limits, as Terraform sets them for TinyLlama (2048 context, 700 new).
MAX_INPUT_TOKENS = 1348
MAX_TOTAL_TOKENS = 2048
# The chat history table the function tests create on moto (tests/conftest.py's `dynamodb`).
HISTORY_TABLE = "test-chat-history"


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
