"""The real model server (``python -m tools.model_server``, transformers on CPU) on a tiny model.

It runs in its own venv (Python 3.11, CPU torch), as ``make local`` runs it, on a randomly
initialised 2-layer Llama with a byte-level BPE tokenizer and TinyLlama's chat template, made
by ``tiny_model.py``: real loading, templating, tokenising and generation, no download. Token
counts are checked against the ``tokenizers`` library directly, not through the backend.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.commands import run_tool
from tests.support.model_server import (
    MODEL_ID,
    ModelServer,
    invoke_json,
    model_server_env,
    runtime_client,
    serving,
)

pytestmark = [pytest.mark.local, pytest.mark.model_server]

ENDPOINT = "tiny-endpoint"
MAX_INPUT_TOKENS = 64
MAX_TOTAL_TOKENS = 128
# What TinyLlama's template renders for these messages (add_generation_prompt=True).
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
]
RENDERED = (
    "<|system|>\nBe brief.</s>\n<|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n"
)


def run_model_server(python: Path, args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """Run a model server expected to exit; returns (status, stderr, seconds)."""
    started = time.monotonic()
    proc = run_tool("tools.model_server", *args, python=python, env=env, timeout=120)
    return proc.returncode, proc.stderr, time.monotonic() - started


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def tokens(model_server_python: Path, tiny_model: Path) -> Any:
    """Token counts straight from the tokenizers library (independent of the backend)."""

    def count(text: str, *, special: bool) -> int:
        script = (
            "import sys, json; from tokenizers import Tokenizer; "
            f"t = Tokenizer.from_file({str(tiny_model / 'tokenizer.json')!r}); "
            "print(len(t.encode(json.loads(sys.stdin.read()), add_special_tokens="
            f"{special}).ids))"
        )
        out = subprocess.run(
            [str(model_server_python), "-c", script],
            input=json.dumps(text),
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout)

    return count


@pytest.fixture(scope="module")
def tiny_server(model_server_python: Path, tiny_model: Path) -> Iterator[ModelServer]:
    with serving(
        model_server_python,
        [
            "--model",
            MODEL_ID,
            "--model-dir",
            str(tiny_model),
            "--endpoint-name",
            ENDPOINT,
            "--port",
            "0",
            "--max-input-tokens",
            str(MAX_INPUT_TOKENS),
            "--max-total-tokens",
            str(MAX_TOTAL_TOKENS),
            "--offline",
        ],
        model_server_env(HF_HUB_OFFLINE="1"),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client(tiny_server: ModelServer) -> Any:
    return runtime_client(tiny_server.url)


def invoke(client: Any, body: dict[str, Any]) -> Any:
    return invoke_json(client, ENDPOINT, body)


def validation_error(client: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ClientError) as caught:
        invoke(client, body)
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 422
    return json.loads(response["OriginalMessage"])["error"]


def test_chat_renders_the_models_template_and_adds_no_second_bos(client: Any, tokens: Any) -> None:
    answer = invoke(client, {"messages": MESSAGES, "max_tokens": 4, "temperature": 0})
    assert answer["object"] == "chat.completion"
    assert answer["model"] == MODEL_ID
    # TGI tokenises a templated prompt without special tokens: the template wrote them.
    assert answer["usage"]["prompt_tokens"] == tokens(RENDERED, special=False)
    assert tokens(RENDERED, special=True) == answer["usage"]["prompt_tokens"] + 1
    assert 1 <= answer["usage"]["completion_tokens"] <= 4
    assert answer["choices"][0]["finish_reason"] in {"length", "stop"}


def test_token_limits_are_counted_with_the_real_tokenizer(client: Any, tokens: Any) -> None:
    question = "What is the capital of France? The capital of France is Paris."
    given = tokens(question, special=True)  # the generate route adds special tokens
    assert validation_error(
        client, {"inputs": question, "parameters": {"max_new_tokens": MAX_TOTAL_TOKENS}}
    ) == (
        f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
        f"{MAX_TOTAL_TOKENS}. Given: {given} `inputs` tokens and {MAX_TOTAL_TOKENS} "
        "`max_new_tokens`"
    )
    long_text = " ".join([question] * 8)
    long_given = tokens(long_text, special=True)
    assert MAX_INPUT_TOKENS < long_given < MAX_TOTAL_TOKENS
    assert validation_error(client, {"inputs": long_text, "parameters": {"max_new_tokens": 1}}) == (
        f"Input validation error: `inputs` must have less than {MAX_INPUT_TOKENS} tokens. "
        f"Given: {long_given}"
    )


def test_greedy_generation_is_deterministic_and_echoes_the_prompt(client: Any) -> None:
    body = {
        "inputs": "The capital of France is",
        "parameters": {"max_new_tokens": 12, "details": True},
    }
    first, second = invoke(client, body), invoke(client, body)
    assert first == second
    generated = first[0]
    assert generated["generated_text"].startswith("The capital of France is")
    details = generated["details"]
    assert details["seed"] is None  # greedy
    assert details["finish_reason"] in {"length", "eos_token"}
    if details["finish_reason"] == "length":
        assert details["generated_tokens"] == 12


def test_stop_sequence_ends_generation_right_after_it(client: Any) -> None:
    base = {
        "inputs": "Paris is a city in",
        "parameters": {"max_new_tokens": 40, "return_full_text": False},
    }
    free = invoke(client, {**base, "parameters": {**base["parameters"], "details": True}})[0]
    text = free["generated_text"]
    # A short ASCII stretch of the greedy output, at its first occurrence, with text after it.
    stop, at = next(
        (text[i : i + 2], i)
        for i in range(1, len(text) - 3)
        if text[i : i + 2].isascii()
        and text[i : i + 2].isalnum()
        and text.find(text[i : i + 2]) == i
    )
    stopped = invoke(
        client, {**base, "parameters": {**base["parameters"], "stop": [stop], "details": True}}
    )[0]
    assert stopped["generated_text"] == text[: at + len(stop)]
    assert stopped["details"]["finish_reason"] == "stop_sequence"
    assert stopped["details"]["generated_tokens"] < free["details"]["generated_tokens"]


def test_seeded_sampling_is_reproducible(client: Any) -> None:
    def sample(seed: int) -> str:
        answer = invoke(
            client, {"messages": MESSAGES, "max_tokens": 24, "temperature": 1.0, "seed": seed}
        )
        return answer["choices"][0]["message"]["content"]

    assert sample(11) == sample(11)
    assert sample(11) != sample(12)
    details = invoke(
        client,
        {
            "inputs": "Paris",
            "parameters": {"max_new_tokens": 3, "do_sample": True, "seed": 5, "details": True},
        },
    )[0]["details"]
    assert details["seed"] == 5


def test_the_answer_streams_token_by_token_as_the_buffered_one(client: Any) -> None:
    body = {"messages": MESSAGES, "max_tokens": 16, "temperature": 0}
    buffered = invoke(client, body)
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT,
        Body=json.dumps({**body, "stream": True, "stream_options": {"include_usage": True}}),
        ContentType="application/json",
    )
    assert response["ContentType"] == "text/event-stream"
    parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    events = b"".join(parts).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    *tokens, finish, usage = chunks
    assert len(parts) == len(chunks) + 1  # one PayloadPart per event, as the engine writes them
    assert len(tokens) > 1  # piece by piece, not the whole answer at the end
    streamed = "".join(chunk["choices"][0]["delta"]["content"] for chunk in tokens)
    assert streamed == buffered["choices"][0]["message"]["content"]
    assert finish["choices"][0]["finish_reason"] == buffered["choices"][0]["finish_reason"]
    assert usage["usage"] == buffered["usage"]


def test_requests_are_logged_one_line_each(tiny_server: ModelServer, client: Any) -> None:
    invoke(client, {"messages": MESSAGES, "max_tokens": 2})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        chats = [line for line in tiny_server.stderr if "chat: " in line]
        if chats:
            break
        time.sleep(0.05)
    assert chats
    assert chats[-1].startswith(f"POST /endpoints/{ENDPOINT}/invocations 200 ")


# ---------------------------------------------------------------------------
# Finding the weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hub unreachable", "offline"])
def test_missing_weights_fail_fast_and_say_how_to_provide_them(
    model_server_python: Path, tmp_path: Path, mode: str
) -> None:
    env = model_server_env(HF_HOME=str(tmp_path / "empty-hf-home"), HF_ENDPOINT=closed_port_url())
    args = ["--model", MODEL_ID, "--endpoint-name", ENDPOINT, "--port", "0"]
    if mode == "offline":
        args.append("--offline")
    status, stderr, seconds = run_model_server(model_server_python, args, env)
    assert status == 2
    assert seconds < 60  # no retry loop against a Hub that is not there
    assert f"The weights of {MODEL_ID} are not in the local Hugging Face cache" in stderr
    assert str(tmp_path / "empty-hf-home" / "hub") in stderr
    assert f"hf download {MODEL_ID}" in stderr
    assert "--model-dir FOLDER" in stderr
    assert "make local MODEL_DIR=FOLDER" in stderr
    reason = "offline mode is on" if mode == "offline" else "is unreachable"
    assert reason in stderr


def test_model_dir_without_a_model_is_a_clear_error(
    model_server_python: Path, tmp_path: Path
) -> None:
    status, stderr, _ = run_model_server(
        model_server_python,
        [
            "--model",
            MODEL_ID,
            "--model-dir",
            str(tmp_path),
            "--endpoint-name",
            ENDPOINT,
            "--port",
            "0",
        ],
        model_server_env(),
    )
    assert status == 2
    assert f"--model-dir {tmp_path} has no config.json" in stderr


def test_weights_in_the_hugging_face_cache_load_without_network(
    model_server_python: Path, tiny_model: Path, tmp_path: Path
) -> None:
    # The Hub cache's layout: models--ORG--NAME/{refs/main, snapshots/<commit>/<files>}.
    repo = tmp_path / "hf-home" / "hub" / f"models--{MODEL_ID.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    with serving(
        model_server_python,
        [
            "--model",
            MODEL_ID,
            "--endpoint-name",
            ENDPOINT,
            "--port",
            "0",
            "--max-total-tokens",
            "256",
        ],
        model_server_env(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=closed_port_url()),
    ) as server:
        answer = invoke(runtime_client(server.url), {"messages": MESSAGES, "max_tokens": 3})
        assert answer["usage"]["completion_tokens"] >= 1
        assert any("from the Hugging Face cache" in line for line in server.stderr)
        assert any("max_input_tokens=255 max_total_tokens=256" in line for line in server.stderr)
