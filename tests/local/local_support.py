"""Constants and helpers shared by the local-stack tests (imported as ``local_support``)."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
# The id the SageMaker model carries; the tiny model stands in for its weights.
MODEL_ID = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
READY_PREFIX = "sagemaker_tgi listening on "  # sagemaker_tgi.__main__.READY_PREFIX


def model_server_env(**overrides: str) -> dict[str, str]:
    """The environment for ``python -m sagemaker_tgi``: never the developer's Hub settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AWS_"))}
    env["PYTHONPATH"] = str(SCRIPTS)
    env.update(overrides)
    return env


@dataclass
class ModelServer:
    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)
    stderr_reader: threading.Thread | None = None

    @property
    def log(self) -> str:
        """What it wrote to stderr (all of it once ``stop_model_server`` returned)."""
        return "".join(self.stderr)


def start_model_server(python: Path, args: list[str], env: dict[str, str]) -> ModelServer:
    process = subprocess.Popen(
        [str(python), "-m", "sagemaker_tgi", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = ModelServer(process, "")
    server.stderr_reader = threading.Thread(
        target=lambda: server.stderr.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    server.stderr_reader.start()
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        pytest.fail(f"the model server did not start: {line!r}\n{''.join(server.stderr)}")
    server.url = line.removeprefix(READY_PREFIX).strip()
    return server


def stop_model_server(server: ModelServer) -> None:
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0  # SIGTERM is a clean stop
    if server.stderr_reader is not None:
        server.stderr_reader.join(timeout=10)
