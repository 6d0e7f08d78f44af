"""Run the built artifacts as Lambda would: unzipped, alone, in a fresh Python 3.12, timed.

Shared by the packaging tests (is each zip complete?) and ``make bench`` (what does it cost?).
A function's zip unpacks into task/<function>/ (Lambda's /var/task) and the layer into opt/
(Lambda's /opt, whose python/ folder is on the runtime's sys.path); ``runtime.py run`` then
imports the handler from those folders only and answers Function URL events in process.
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

from tools.lambda_sandbox.events import local_caller, request_event
from tools.paths import find_python

RUNTIME_SCRIPT = Path(__file__).with_name("runtime.py")
HANDLERS = {"chat": "chat.handler.handler", "qa": "qa.handler.handler"}
FUNCTION_NAME = "packaged-function"
REGION = "eu-west-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
ENDPOINT_NAME = "packaged-endpoint"
QUESTION = "What is the capital of France?"


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
            _keep_executable_bits(archive, unpacked.task(function))
    return unpacked


def _keep_executable_bits(archive: zipfile.ZipFile, root: Path) -> None:
    """As Lambda does (zipfile's extractall drops modes): the start script stays executable."""
    for info in archive.infolist():
        mode = (info.external_attr >> 16) & 0o777
        if mode & 0o111:
            (root / info.filename).chmod(mode)


def runtime_python() -> str:
    """Python 3.12, the Lambda runtime's version: this interpreter if it is one."""
    return find_python("3.12")


def function_url_event(body: str = json.dumps([QUESTION])) -> dict[str, Any]:
    """A Function URL's POST event with this JSON body, signed as the deployed AWS_IAM URLs
    require (chat keys a session by its caller)."""
    return request_event(body, iam=local_caller("AKIAIOSFODNN7EXAMPLE"))


def lambda_environment(endpoint_url: str, home: Path, **overrides: str) -> dict[str, str]:
    """What Terraform and Lambda set, pointed at the local fake; nothing inherited from this
    shell (a developer's AWS_PROFILE or LANGSMITH_TRACING would change what is measured)."""
    return {
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]00000000000000000000000000000000",
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "HISTORY_TABLE_NAME": "",
        "MAX_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": "packaged",
        **overrides,
    }


@dataclass(frozen=True)
class Run:
    """What one isolated interpreter reported (see ``runtime.run``)."""

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
    """Start `python -I -S -B [flags] runtime.py run` with only `sys_path`; fail loudly if it fails.

    -I: no environment-driven paths, user site or script folder; -S: no site-packages; -B: no
    bytecode written, as on Lambda's read-only file system, so every cold start reads the
    shipped .pyc files and compiles only what has none.
    """
    with tempfile.TemporaryDirectory(prefix="lambda-run-") as scratch:
        spec_file, result_file = Path(scratch) / "spec.json", Path(scratch) / "result.json"
        spec = {
            "sys_path": [str(path) for path in sys_path],
            "steps": [{"name": name, "code": code} for name, code in steps],
            "handler": handler,
            "events": list(events),
            "requests": len(events) if requests is None else requests,
            "invoked_function_arn": FUNCTION_ARN,
            "timeout_ms": int(timeout * 1000),
        }
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        command = [python or runtime_python(), "-I", "-S", "-B", *flags, str(RUNTIME_SCRIPT)]
        started = time.perf_counter()
        finished = subprocess.run(
            [*command, "run", str(spec_file), str(result_file)],
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
