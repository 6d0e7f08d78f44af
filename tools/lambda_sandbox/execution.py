"""What every local execution environment shares, whichever way it runs its function.

A function's configuration (``FunctionSpec``), how a worker is made (``WorkerSetup``), Lambda's
error documents for an invocation or an init that failed, and the relay of an environment's
output to the log. ``functions`` (the runtime's own workers) and ``wrapped`` (workers behind an
exec wrapper) both build on it; neither imports the other's internals.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Lambda's init phase limit for an on-demand init; a slower init is retried within the
# invocation, under the function's timeout ("Init phase", Lambda execution environment
# lifecycle, AWS Lambda Developer Guide).
INIT_TIMEOUT_SECONDS = 10.0
Log = Callable[[str], None]
_RESERVED_PREFIXES = ("AWS_LAMBDA_", "_HANDLER", "LAMBDA_")
# Variables under a reserved prefix that a function may set all the same.
_SETTABLE = frozenset({"AWS_LAMBDA_EXEC_WRAPPER"})


@dataclass(frozen=True)
class FunctionSpec:
    """One deployed function: its artifacts and configuration (what get_function returns)."""

    name: str
    handler: str
    code_zip: Path
    layer_zips: tuple[Path, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    runtime: str = "python3.12"
    region: str = "us-east-1"
    account_id: str = "123456789012"
    auth_type: str = "NONE"  # the Function URL's: NONE or AWS_IAM
    url_id: str | None = None  # the <url-id> of https://<url-id>.lambda-url.<region>.on.aws
    version: str = "$LATEST"  # the published version the URL serves (through `alias`)
    alias: str | None = None  # the URL's qualifier; None: the unqualified function
    # SnapStart on the version: each worker's init runs in full (there is no snapshot here),
    # with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, as in the snapshotted init on AWS.
    snap_start: bool = False
    # The URL's: RESPONSE_STREAM relays the function's response stream as it comes.
    invoke_mode: str = "BUFFERED"

    def __post_init__(self) -> None:
        if not self.runtime.startswith("python3."):
            raise ValueError(f"{self.name}: runtime {self.runtime} is not a Python runtime")
        if self.auth_type not in ("NONE", "AWS_IAM"):
            raise ValueError(f"{self.name}: auth_type must be NONE or AWS_IAM")
        if self.timeout_seconds <= 0:
            raise ValueError(f"{self.name}: timeout_seconds must be positive")
        if self.invoke_mode not in ("BUFFERED", "RESPONSE_STREAM"):
            raise ValueError(f"{self.name}: invoke_mode must be BUFFERED or RESPONSE_STREAM")
        reserved = sorted(
            k for k in self.environment if k.startswith(_RESERVED_PREFIXES) and k not in _SETTABLE
        )
        if reserved:
            raise ValueError(f"{self.name}: reserved environment variables set: {reserved}")

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @property
    def invoked_arn(self) -> str:
        """The ARN an invocation through the URL names: qualified by the alias, if any."""
        return f"{self.arn}:{self.alias}" if self.alias else self.arn

    @property
    def exec_wrapper(self) -> str | None:
        """``AWS_LAMBDA_EXEC_WRAPPER``: such a function runs in a ``wrapped`` environment."""
        return self.environment.get("AWS_LAMBDA_EXEC_WRAPPER") or None

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")


class InvocationError(Exception):
    """An invocation ended without a result; ``document`` is Lambda's error JSON."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(f"{document.get('errorType')}: {document.get('errorMessage')}")
        self.document = document


@dataclass(frozen=True)
class WorkerSetup:
    """One execution environment's makings: the function, the runtime's interpreter, its
    unpacked code (/var/task) and layers (/opt), Lambda's environment, and the log."""

    spec: FunctionSpec
    python: str
    task: Path
    opt: Path
    env: dict[str, str]
    log: Log

    @property
    def init_limit(self) -> float:
        return max(INIT_TIMEOUT_SECONDS, self.spec.timeout_seconds)


def init_timed_out(seconds: float) -> dict[str, Any]:
    return {
        "errorMessage": f"The init phase did not finish within {seconds:.0f} seconds",
        "errorType": "Runtime.InitTimeout",
        "stackTrace": [],
    }


def runtime_exited(code: int | None) -> dict[str, Any]:
    return {
        "errorMessage": f"Runtime exited with error: exit status {code}",
        "errorType": "Runtime.ExitError",
        "stackTrace": [],
    }


def timed_out(spec: FunctionSpec, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} "
        f"Task timed out after {spec.timeout_seconds:.2f} seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }


def relay_output(process: subprocess.Popen[bytes], log: Log, name: str) -> list[threading.Thread]:
    """Relay an environment's stdout and stderr to the log, line by line, as CloudWatch gets
    them; the threads end when the process closes its end of the pipes."""

    def relay(stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):
            log(f"[{name}] {raw.decode('utf-8', errors='replace').rstrip()}")
        stream.close()

    threads = [
        threading.Thread(target=relay, args=(stream,), daemon=True)
        for stream in (process.stdout, process.stderr)
    ]
    for thread in threads:
        thread.start()
    return threads
