"""Fixtures shared by the suites: the fake SageMaker runtime, fresh handlers, built artifacts.

Helpers that tests import live in tests/support: a conftest holds fixtures only.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import (
    ENDPOINT_NAME,
    MAX_INPUT_TOKENS,
    MAX_TOTAL_TOKENS,
    LambdaContext,
    function_env,
)
from tests.support.fake_endpoint import ScriptedBackend
from tools.model_server.server import SageMakerTGIServer
from tools.paths import REPO_ROOT

pytest_plugins = ["tests.support.model_server"]

# Modules a handler import builds state in; purged so each test gets a fresh "container".
FUNCTION_PACKAGES = ("chat", "qa")


def purge_function_modules() -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in FUNCTION_PACKAGES:
            del sys.modules[name]


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
        purge_function_modules()
        # Powertools reuses a service's logger (and its stream) across imports; a fresh
        # container gets a fresh one, writing to this test's captured stdout.
        logging.Logger.manager.loggerDict.pop(os.environ["POWERTOOLS_SERVICE_NAME"], None)
        return importlib.import_module(module)

    yield load
    purge_function_modules()


@pytest.fixture(scope="session")
def built_artifacts() -> Path:
    """The artifacts `make package` builds (a no-op when they are current)."""
    build_dir = Path(os.environ.get("BUILD_DIR", REPO_ROOT / "build"))
    if not build_dir.is_absolute():
        build_dir = REPO_ROOT / build_dir
    subprocess.run(
        [sys.executable, "-m", "tools.packaging", "--build-dir", str(build_dir)],
        check=True,
        cwd=REPO_ROOT,
    )
    return build_dir
