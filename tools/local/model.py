"""The model server ``make local`` runs: which model serves the endpoint, and its process.

By default the embedded SmolLM2-135M-Instruct (``tools.model_server.embedded``: no download,
answers in seconds on a CPU) stands in for the deployed ``HF_MODEL_ID``, and says so; with
``--model HUB_ID`` (``make local MODEL=...``) that id is deployed as the root module's
``model_id`` and served itself, and ``--model-dir`` serves the deployed model from a folder.
The server is ``python -m tools.model_server`` in its own venv, with the token limits read
back from what was deployed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tools.local.stack import DeployedEndpoint
from tools.model_server.embedded import EMBEDDED_MODEL_ID, WHEEL
from tools.model_server.server import READY_PREFIX
from tools.paths import REPO_ROOT

DEFAULT_PYTHON = REPO_ROOT / ".venv-model-server" / "bin" / "python"
EMBEDDED = "embedded"  # --model's default: the model that ships in the model server's venv
# Root module settings that make local deploys unless --var or --max-new-tokens says otherwise
# (docs/local-stack.md has the figures). The model server generates one request at a time on
# a CPU, where reading a prompt dominates a QA call: QA keeps one map call in flight (more
# only queue, their wait counted in each call's READ_TIMEOUT_SECONDS), smaller prompts keep
# each call well inside that wait on a busy machine, and the function's timeout leaves a 10 KB
# document's calls time to finish when other work shares the cores.
CPU_SETTINGS: dict[str, Any] = {
    "max_input_tokens": 1024,
    "qa_map_concurrency": 1,
    "function_timeout": 600,
}
# Torch's threads spin while they wait for each other: when other work shares the two cores
# (the functions, moto, a test suite), one thread reads a prompt several times faster than two.
MODEL_SERVER_THREADS = 1
# The cap on new tokens bounds what a greedy small model rambles through; at 135 M parameters
# its sampled answers wander, so it decodes greedily (temperature 0).
EMBEDDED_SETTINGS: dict[str, Any] = {"temperature": 0, "max_new_tokens": 256, **CPU_SETTINGS}
# TinyLlama decodes several times slower: 700 new tokens would not fit the functions' wait.
HUB_MODEL_SETTINGS: dict[str, Any] = {"max_new_tokens": 256, **CPU_SETTINGS}


class ModelServerError(RuntimeError):
    """The model server could not start; the message says why (its own log is above it)."""


@dataclass(frozen=True)
class ModelChoice:
    """What ``--model`` and ``--model-dir`` asked for."""

    embedded: bool
    hub_id: str | None = None
    model_dir: str | None = None
    offline: bool = False

    @classmethod
    def from_arguments(cls, model: str | None, model_dir: str | None, offline: bool) -> ModelChoice:
        """None or ``embedded`` without a folder: the embedded model; else a Hub id or folder."""
        if model == EMBEDDED and model_dir:
            raise ValueError(
                f"--model {EMBEDDED} and --model-dir name two different models: choose one"
            )
        embedded = model == EMBEDDED or (model is None and not model_dir)
        return cls(embedded, None if embedded else model, model_dir, offline)

    def root_variables(self) -> dict[str, Any]:
        """The root module variables this choice deploys with (``--var`` overrides them)."""
        if self.embedded:
            return dict(EMBEDDED_SETTINGS)
        return {**HUB_MODEL_SETTINGS, **({"model_id": self.hub_id} if self.hub_id else {})}

    def announcement(self, endpoint: DeployedEndpoint) -> str:
        """The one line that says which model serves, and what the deployed stack runs."""
        existing = endpoint.model_name is None
        if not self.embedded:
            return f"model: {self.served(endpoint)}, as the deployed stack runs it"
        deployed = (
            f"the existing endpoint {endpoint.name}; `make local MODEL=<hub id>` serves another "
            "model"
            if existing
            else f"{endpoint.model_id}, which the deployed stack runs on AWS ({endpoint.engine}); "
            f"`make local MODEL={endpoint.model_id}` serves that instead"
        )
        embedded = f"the embedded {EMBEDDED_MODEL_ID} (pip package {WHEEL})"
        return f"model: {embedded} stands in for {deployed}"

    def served(self, endpoint: DeployedEndpoint) -> str:
        if endpoint.model_name is None:  # an existing endpoint: nothing deployed names a model
            if self.embedded:
                return EMBEDDED_MODEL_ID
            return self.hub_id or Path(str(self.model_dir)).name
        if self.embedded:
            return f"{EMBEDDED_MODEL_ID} (embedded, standing in for {endpoint.model_id})"
        return endpoint.model_id

    def server_arguments(self, endpoint: DeployedEndpoint) -> list[str]:
        arguments = ["--embedded"] if self.embedded else ["--model", self.served(endpoint)]
        arguments += ["--threads", str(MODEL_SERVER_THREADS)]
        if self.model_dir:
            arguments += ["--model-dir", str(Path(self.model_dir).resolve())]
        if self.offline:
            arguments.append("--offline")
        return arguments


def token_limits(
    endpoint: DeployedEndpoint, function_environment: dict[str, str]
) -> dict[str, int | None]:
    """The container's limits: from its environment, or the functions' for an existing one."""
    if endpoint.model_name is None:
        # The functions budget MAX_INPUT_TOKENS + MAX_NEW_TOKENS per request: the limits an
        # existing endpoint must allow, so the local stand-in allows exactly those.
        prompt = int(function_environment["MAX_INPUT_TOKENS"])
        return {
            "--max-input-tokens": prompt,
            "--max-total-tokens": prompt + int(function_environment["MAX_NEW_TOKENS"]),
        }
    if endpoint.engine == "vllm":
        return {"--max-total-tokens": endpoint.token_limit("SM_VLLM_MAX_MODEL_LEN")}
    return {
        "--max-input-tokens": endpoint.token_limit("MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH"),
        "--max-total-tokens": endpoint.token_limit("MAX_TOTAL_TOKENS"),
        "--max-stop-sequences": endpoint.token_limit("MAX_STOP_SEQUENCES"),
    }


class ModelServerProcess:
    """``python -m tools.model_server`` as a child process, its output relayed to the log."""

    def __init__(self, command: list[str], log: Callable[[str], None]) -> None:
        self.command = command
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exit_status(self) -> int | None:
        """None while it runs (or before it started)."""
        return self.process.poll() if self.process is not None else None

    def start(self, stop: threading.Event, on_started: Callable[[], None]) -> str:
        """Start it and wait for its ready line; its URL. ``on_started`` runs once it has a pid."""
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,  # `-m tools.model_server` is found from the repository root
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C goes to us; we stop it in order
        )
        on_started()
        ready = threading.Event()
        self._relay(self.process.stderr)
        self._relay(self.process.stdout, on_line=lambda line: self._ready(line, ready))
        while not ready.wait(0.2):
            if self.process.poll() is not None:
                raise ModelServerError(
                    f"the model server exited with status {self.process.returncode} "
                    "before serving (its message is above)"
                )
            if stop.is_set():
                raise ModelServerError("stopped while the model server was loading")
        return self.url

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _ready(self, line: str, ready: threading.Event) -> bool:
        """Catch the ready line; True to keep it out of the log."""
        if line.startswith(READY_PREFIX):
            self.url = line.removeprefix(READY_PREFIX).strip()
            ready.set()
            return True
        return False

    def _relay(self, stream: IO[bytes] | None, on_line: Any = None) -> None:
        def pump() -> None:
            assert stream is not None
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip()
                if on_line is None or not on_line(line):
                    self._log("[model] " + line)
            stream.close()

        threading.Thread(target=pump, daemon=True).start()
