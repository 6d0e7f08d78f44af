"""One moto server for the tests that need an AWS API (DynamoDB history, S3 documents).

Registered as a pytest plugin by tests/conftest.py: ``moto_url`` is started once per session
and shared; each test names its own tables and buckets and removes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from tools.devstack import MotoServer

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with MotoServer() as moto:
        yield moto.url


def moto_client(service: str, url: str, region: str = REGION) -> Any:
    """A boto3 client for moto at ``url``, with its dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextmanager
def api_keys_table(dynamodb: Any, name: str = "") -> Iterator[str]:
    """A keys table as auth.tf declares it (one string partition key), removed afterwards."""
    name = name or f"api-keys-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield name
    finally:
        dynamodb.delete_table(TableName=name)


@pytest.fixture(scope="module")
def keys_dynamodb(moto_url: str) -> Any:
    """A DynamoDB client on the moto server, for API keys tables."""
    return moto_client("dynamodb", moto_url)


@pytest.fixture(scope="module")
def keys_table(keys_dynamodb: Any) -> Iterator[str]:
    """An API keys table shared by a module's tests: each names its own keys."""
    with api_keys_table(keys_dynamodb) as name:
        yield name
