"""The model server's interpreter, a tiny model, and the environment to serve it with.

The model server runs in its own venv (Python 3.11, CPU torch), made by
`make model-server-venv`; `make test` makes it first. When it is missing, its tests follow the
suite's rule for a missing tool (tests/support/tools.py: fail in CI, skip elsewhere).
Registered as a pytest plugin by tests/conftest.py, so every test folder gets these fixtures.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.tools import missing_tool
from tools.model_server.server import READY_PREFIX
from tools.paths import REPO_ROOT

TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
# The id the SageMaker model carries; the tiny model stands in for its weights.
MODEL_ID = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


def model_server_env(**overrides: str) -> dict[str, str]:
    """The environment for ``python -m tools.model_server``: never the developer's Hub settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AWS_"))}
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def model_server_python() -> Path:
    python = Path(
        os.environ.get("MODEL_SERVER_PYTHON", REPO_ROOT / ".venv-model-server" / "bin" / "python")
    )
    if not python.exists():
        missing_tool(
            f"{python} does not exist: create the model server's venv with "
            "`make model-server-venv` (`make test` does it first)"
        )
    return python


@pytest.fixture(scope="session")
def tiny_model(model_server_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level BPE tokenizer and chat template."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run(
        [str(model_server_python), str(TINY_MODEL_SCRIPT), str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


@dataclass
class ModelServer:
    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        """What it wrote to stderr (all of it once ``serving`` has stopped it)."""
        return "".join(self.stderr)


@contextmanager
def serving(python: Path, args: list[str], env: dict[str, str]) -> Iterator[ModelServer]:
    """``python -m tools.model_server ARGS`` once it says it is listening; stopped on leaving,
    whatever happened inside, and the stop must be clean (SIGTERM, status 0)."""
    process = subprocess.Popen(
        [str(python), "-m", "tools.model_server", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = ModelServer(process, "")
    stderr_reader = threading.Thread(
        target=lambda: server.stderr.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    stderr_reader.start()
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        pytest.fail(f"the model server did not start: {line!r}\n{''.join(server.stderr)}")
    server.url = line.removeprefix(READY_PREFIX).strip()
    try:
        yield server
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM is a clean stop
        stderr_reader.join(timeout=10)


def runtime_client(url: str, region: str = "us-east-1") -> Any:
    """A SageMaker runtime client for a local endpoint: dummy credentials, one attempt."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
    )


def invoke_json(client: Any, endpoint: str, body: dict[str, Any]) -> Any:
    """InvokeEndpoint with a JSON body; the parsed JSON answer."""
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json"
    )
    return json.loads(response["Body"].read())
