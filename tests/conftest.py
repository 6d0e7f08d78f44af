"""Fixtures shared by the suites: Function URL events, the fake SageMaker runtime, handlers."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fakes.scripted_backend import ScriptedBackend
from sagemaker_tgi.server import SageMakerTGIServer

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).parent / "events"
ENDPOINT_NAME = "tgi-test-endpoint"
# The fake endpoint's limits, as Terraform sets them for TinyLlama (2048 context, 700 new).
MAX_INPUT_TOKENS = 1348
MAX_TOTAL_TOKENS = 2048
# Modules a handler import builds state in; purged so each test gets a fresh "container".
FUNCTION_MODULES = ("chat_handler", "qa_handler", "conversation", "history", "document_qa")


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


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@dataclass
class FakeEndpoint:
    """The fake SageMaker runtime as tests drive it: script replies, read what it received."""

    server: SageMakerTGIServer
    backend: ScriptedBackend
    invocations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def reply(self, *steps: Any) -> None:
        self.backend.script(*steps)

    @property
    def last_request(self) -> dict[str, Any]:
        assert self.invocations, "the endpoint received no request"
        return self.invocations[-1]


@pytest.fixture(scope="session")
def _endpoint_server() -> Iterator[FakeEndpoint]:
    backend = ScriptedBackend()
    invocations: list[dict[str, Any]] = []
    server = SageMakerTGIServer(
        backend,
        ENDPOINT_NAME,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        on_invocation=lambda _name, body: invocations.append(body),
    )
    server.start()
    try:
        yield FakeEndpoint(server, backend, invocations)
    finally:
        server.stop()


@pytest.fixture
def fake_endpoint(_endpoint_server: FakeEndpoint) -> FakeEndpoint:
    _endpoint_server.backend.reset()
    _endpoint_server.invocations.clear()
    return _endpoint_server


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


@pytest.fixture
def load_handler(
    monkeypatch: pytest.MonkeyPatch, fake_endpoint: FakeEndpoint
) -> Iterator[Callable[..., Any]]:
    """Import a handler module fresh, as a new Lambda container would, with the given env."""

    def load(module: str, **env: str) -> Any:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for key, value in function_env(fake_endpoint.url, **env).items():
            monkeypatch.setenv(key, value)
        for name in FUNCTION_MODULES:
            sys.modules.pop(name, None)
        # Powertools reuses a service's logger (and its stream) across imports; a fresh
        # container gets a fresh one, writing to this test's captured stdout.
        logging.Logger.manager.loggerDict.pop(os.environ["POWERTOOLS_SERVICE_NAME"], None)
        return importlib.import_module(module)

    yield load
    for name in FUNCTION_MODULES:
        sys.modules.pop(name, None)


def response_json(response: dict[str, Any]) -> Any:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])


@pytest.fixture(scope="session")
def built_artifacts() -> Path:
    """The artifacts `make package` builds (a no-op when they are current)."""
    build_dir = Path(os.environ.get("BUILD_DIR", REPO_ROOT / "build"))
    if not build_dir.is_absolute():
        build_dir = REPO_ROOT / build_dir
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "package.py"), "--build-dir", str(build_dir)],
        check=True,
        cwd=REPO_ROOT,
    )
    return build_dir
