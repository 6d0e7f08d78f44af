"""Run the built Lambda artifacts as Lambda would: unzipped, alone, in a fresh Python 3.12.

Shared by the packaging tests (is each zip complete?) and scripts/bench.py (what does it cost?).
A function's zip unpacks into task/ (Lambda's /var/task) and the layer into opt/ (Lambda's /opt,
whose python/ folder is on the runtime's sys.path); packaging_lambda_driver.py then imports
the handler from those two folders only and answers Function URL events.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.model_server.backend import GenerateParams, Generation
from tools.paths import REPO_ROOT, find_python

DRIVER = Path(__file__).resolve().parent / "driver.py"
FUNCTION_URL_EVENT = REPO_ROOT / "tests" / "events" / "function_url_post.json"
HANDLERS = {"chat": "chat.handler.handler", "qa": "qa.handler.handler"}
ENDPOINT_NAME = "packaged-endpoint"
QUESTION = "What is the capital of France?"
ANSWER = "Paris."


@dataclass(frozen=True)
class Unpacked:
    """The artifacts of one build, unzipped into Lambda's layout under `root`."""

    root: Path

    @property
    def layer(self) -> Path:
        return self.root / "opt" / "python"

    def task(self, function: str) -> Path:
        return self.root / "task" / function

    def sys_path(self, function: str) -> list[Path]:
        return [self.task(function), self.layer]


def unpack(build_dir: Path, root: Path, functions: Sequence[str] = tuple(HANDLERS)) -> Unpacked:
    unpacked = Unpacked(root)
    with zipfile.ZipFile(build_dir / "layer.zip") as layer:
        layer.extractall(root / "opt")
    for function in functions:
        with zipfile.ZipFile(build_dir / f"{function}.zip") as archive:
            archive.extractall(unpacked.task(function))
    return unpacked


def runtime_python() -> str:
    """Python 3.12, the Lambda runtime's version: this interpreter if it is one."""
    return find_python("3.12")


def function_url_event(body: str = json.dumps([QUESTION])) -> dict[str, Any]:
    """The saved payload-2.0 POST event (tests/events) with `body`."""
    event = json.loads(FUNCTION_URL_EVENT.read_text(encoding="utf-8"))
    event["body"] = body
    event["isBase64Encoded"] = False
    event["headers"]["content-length"] = str(len(body.encode()))
    return event


def lambda_environment(endpoint_url: str, home: Path, **overrides: str) -> dict[str, str]:
    """What Terraform sets, pointed at the local fake; nothing inherited from this shell
    (a developer's AWS_PROFILE or LANGSMITH_TRACING would change what is measured)."""
    return {
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "AWS_LAMBDA_FUNCTION_NAME": "packaged-function",
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "HISTORY_TABLE_NAME": "",
        "MAX_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": "packaged",
        **overrides,
    }


@dataclass(frozen=True)
class Run:
    """What one isolated interpreter reported (see packaging_lambda_driver.py)."""

    steps: Mapping[str, float]
    import_seconds: float
    request_seconds: list[float]
    responses: list[dict[str, Any]]
    seconds_since_start: float
    wall_seconds: float
    foreign_modules: list[str]
    loaded_modules: list[str]
    log: str  # The function's stdout (its JSON log lines), then its stderr.

    @property
    def cold_seconds(self) -> float:
        """Init (imports, handler import) plus the first request: a cold start, as billed."""
        return sum(self.steps.values()) + self.import_seconds + self.request_seconds[0]


def run_isolated(
    sys_path: Sequence[Path],
    env: Mapping[str, str],
    *,
    handler: str | None = None,
    events: Sequence[dict[str, Any]] = (),
    requests: int | None = None,
    steps: Sequence[tuple[str, str]] = (),
    python: str | None = None,
    flags: Sequence[str] = (),
    timeout: float = 300,
) -> Run:
    """Start `python -I -S -B [flags] driver` with only `sys_path`; fail loudly if it fails."""
    with tempfile.TemporaryDirectory(prefix="lambda-run-") as scratch:
        spec_file, result_file = Path(scratch) / "spec.json", Path(scratch) / "result.json"
        spec = {
            "sys_path": [str(path) for path in sys_path],
            "steps": [{"name": name, "code": code} for name, code in steps],
            "handler": handler,
            "events": list(events),
            "requests": len(events) if requests is None else requests,
        }
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        command = [python or runtime_python(), "-I", "-S", "-B", *flags, str(DRIVER)]
        started = time.perf_counter()
        finished = subprocess.run(
            [*command, str(spec_file), str(result_file)],
            env=dict(env),
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        wall = time.perf_counter() - started
        if finished.returncode != 0 or not result_file.exists():
            raise RuntimeError(
                f"the isolated interpreter failed (exit {finished.returncode}):\n"
                f"{finished.stdout[-4000:]}{finished.stderr[-4000:]}"
            )
        result = json.loads(result_file.read_text(encoding="utf-8"))
    return Run(
        steps=result["steps"],
        import_seconds=result.get("import_seconds", 0.0),
        request_seconds=result.get("request_seconds", []),
        responses=result.get("responses", []),
        seconds_since_start=result["seconds_since_start"],
        wall_seconds=wall,
        foreign_modules=result["foreign_modules"],
        loaded_modules=result["loaded_modules"],
        log=finished.stdout + finished.stderr,
    )


class InstantBackend:
    """A TGI backend that answers at once, so timings are the functions' own overhead."""

    model_id = "bench/instant"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"<|{m['role']}|>\n{m['content']}</s>\n" for m in messages)

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        return Generation(ANSWER, 2, "eos_token")


# A handler that only calls invoke_endpoint: the least any function on this stack can cost.
FLOOR_HANDLER = """\
import json
import os

import boto3

CLIENT = boto3.client("sagemaker-runtime")
ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]


def handler(event, context):
    question = json.loads(event["body"])[0]
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": 64}
    response = CLIENT.invoke_endpoint(
        EndpointName=ENDPOINT_NAME, ContentType="application/json", Body=json.dumps(body)
    )
    answer = json.loads(response["Body"].read())["choices"][0]["message"]["content"]
    return {"statusCode": 200, "body": json.dumps({"answer": answer})}
"""


def write_floor_function(task: Path) -> str:
    """Write the floor handler into `task`; returns its handler string."""
    task.mkdir(parents=True, exist_ok=True)
    (task / "floor_handler.py").write_text(FLOOR_HANDLER, encoding="utf-8")
    return "floor_handler.handler"
