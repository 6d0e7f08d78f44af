"""The model server's interpreter, a tiny model, and the environment to serve it with.

The model server runs in its own venv (Python 3.11, CPU torch), made by
`make model-server-venv`; `make test` makes it first. When it is missing, its tests follow the
suite's rule for a missing tool (tests/support/tools.py: fail in CI, skip elsewhere).
Registered as a pytest plugin by tests/conftest.py, so every test folder gets these fixtures.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import missing_tool
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
