"""Fixtures of the local-stack tests: the model server's interpreter and a tiny model.

The model server runs in its own venv (Python 3.11, CPU torch), made by
`make model-server-venv`; `make test` makes it first. Its tests fail, rather than skip, when
it is missing: a suite that silently drops them would pass without testing generation.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from local_support import REPO_ROOT, TINY_MODEL_SCRIPT


@pytest.fixture(scope="session")
def model_server_python() -> Path:
    python = Path(
        os.environ.get("MODEL_SERVER_PYTHON", REPO_ROOT / ".venv-model-server" / "bin" / "python")
    )
    if not python.exists():
        pytest.fail(
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
