"""Fixtures shared by the suites: a Lambda context, fresh handlers, built artifacts.

Helpers that tests import live in tests/support: a conftest holds fixtures only.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.environment import HISTORY_TABLE, create_history_table, function_env
from tests.support.events import lambda_context as new_lambda_context
from tools.lambda_sandbox.runtime import LambdaContext
from tools.paths import REPO_ROOT

if TYPE_CHECKING:
    from tests.support.fake_endpoint import FakeEndpoint

pytest_plugins = [
    "tests.support.fake_endpoint",
    "tests.support.model_server",
    "tests.support.moto",
    "tests.support.tokens",
]

# Modules a handler import builds state in; purged so each test gets a fresh "container".
FUNCTION_PACKAGES = ("chat", "qa")


def purge_function_modules() -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in FUNCTION_PACKAGES:
            del sys.modules[name]


@pytest.fixture
def lambda_context() -> LambdaContext:
    return new_lambda_context()


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
    gc.enable()  # a handler whose init failed never resumed it (llm_app.runtime.init_phase)


@pytest.fixture
def dynamodb(moto_url: str) -> Iterator[Any]:
    """A fresh chat history table on moto, with the schema Terraform creates; its client."""
    from tests.support.moto import moto_client  # a plugin: imported once pytest registered it

    client = moto_client("dynamodb", moto_url)
    create_history_table(client, HISTORY_TABLE)
    yield client
    client.delete_table(TableName=HISTORY_TABLE)


@pytest.fixture
def memory(moto_url: str, dynamodb: Any) -> dict[str, str]:
    """The settings of a chat that remembers, on `dynamodb`'s table."""
    return {"HISTORY_TABLE_NAME": HISTORY_TABLE, "AWS_ENDPOINT_URL_DYNAMODB": moto_url}


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
