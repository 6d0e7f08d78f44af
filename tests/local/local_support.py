"""Constants and helpers shared by the local-stack tests (imported as ``local_support``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
# The id the SageMaker model carries; the tiny model stands in for its weights.
MODEL_ID = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


def model_server_env(**overrides: str) -> dict[str, str]:
    """The environment for ``python -m sagemaker_tgi``: never the developer's Hub settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AWS_"))}
    env["PYTHONPATH"] = str(SCRIPTS)
    env.update(overrides)
    return env
