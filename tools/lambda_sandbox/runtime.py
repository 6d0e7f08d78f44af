"""The inside of one local Lambda execution environment: what AWS's Python runtime does.

Started as a file, never imported from ``tools``, by an interpreter in isolated mode
(``python3.12 -I -S [-B] runtime.py ...``): no environment-driven paths, no user site, no
site-packages. The only importable code is the standard library plus what this file puts on
``sys.path``: the function package (``LAMBDA_TASK_ROOT``, Lambda's /var/task) and the layers'
``python/`` folders (Lambda's /opt/python), in Lambda's order. Standard library only: it must
not depend on what it runs. Two ways to drive it:

``runtime.py serve READ_FD WRITE_FD`` (the local Function URLs' warm workers, see
``tools.lambda_sandbox.functions``): import the handler once (the init phase), then answer
invocations in a loop with the handler's JSON result or Lambda's error document
(``errorMessage``, ``errorType``, ``requestId``, ``stackTrace``). Messages are length-prefixed
JSON on the two pipes.

``runtime.py run SPEC.json RESULT.json`` (``make bench`` and the packaging tests, see
``tools.lambda_sandbox.artifacts``): run timed code steps (imports), import a handler and
answer the spec's events in process; the result holds the timings, the responses, and every
loaded module that came from outside the given ``sys_path`` and the standard library.

Either way the handler gets a ``LambdaContext`` and logs through a root handler in Lambda's
text format with the request id.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import struct
import sys
import sysconfig
import time
import traceback
import uuid
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

PROCESS_STARTED = time.perf_counter()
_HEADER = struct.Struct(">I")
_request_id = ""  # of the invocation in progress, for log records


@dataclass(repr=False)
class LambdaContext:
    """The context object of the Python runtime (awslambdaric's LambdaContext)."""

    aws_request_id: str
    _: KW_ONLY
    deadline_ms: int
    invoked_function_arn: str
    function_name: str | None
    # A string, as the real runtime reads it from the environment.
    memory_limit_in_mb: str | None
    function_version: str | None = "$LATEST"
    log_group_name: str | None = None
    log_stream_name: str | None = None
    client_context: None = field(default=None, init=False)
    identity: None = field(default=None, init=False)
    tenant_id: None = field(default=None, init=False)

    @classmethod
    def from_environment(
        cls, request_id: str, deadline_ms: int, invoked_function_arn: str
    ) -> LambdaContext:
        """What the runtime builds for an invocation, from the function's reserved variables."""
        return cls(
            request_id,
            deadline_ms=deadline_ms,
            invoked_function_arn=invoked_function_arn,
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            memory_limit_in_mb=os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb}])"
        )


# ---------------------------------------------------------------------------
# The init phase: sys.path, logging, the handler
# ---------------------------------------------------------------------------
def lambda_sys_path(task_root: str, layer_root: str) -> list[str]:
    """Lambda's order: the function's own code first, then the layers."""
    python_version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return [
        task_root,
        os.path.join(layer_root, "python", "lib", python_version, "site-packages"),
        os.path.join(layer_root, "python"),
    ]


class _FaultError(Exception):
    """A runtime-detected fault, with Lambda's ``Runtime.*`` error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _load_handler(handler: str) -> Any:
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise _FaultError(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler}': {error}"
        ) from None
    module_path = module_name.replace("/", ".")
    if module_path.split(".")[0] in sys.builtin_module_names:
        raise _FaultError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_path} as a handler module",
        )
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise _FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from None
    except SyntaxError as error:
        raise _FaultError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise _FaultError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return function


def _setup_logging() -> None:
    """A root handler in Lambda's text format (the root logger level stays WARNING)."""

    class _RequestId(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = _request_id
            return True

    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestId())
    logging.getLogger().addHandler(handler)


def _enter(sys_path: list[str], task_root: str) -> None:
    sys.path[:0] = sys_path
    os.chdir(task_root)
    _setup_logging()


# ---------------------------------------------------------------------------
# serve: a warm worker answering invocations over two pipes
# ---------------------------------------------------------------------------
def serve(read_fd: int, write_fd: int) -> int:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    _enter(lambda_sys_path(task_root, os.environ["LOCAL_LAMBDA_LAYER_ROOT"]), task_root)
    started = time.monotonic()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as error:  # any failure of the init phase is reported, as Lambda does
        _send(write_fd, {"type": "init_error", "error": _error_document(error, "")})
        return 1
    _send(write_fd, {"type": "ready", "init_ms": (time.monotonic() - started) * 1000})

    while (message := _receive(read_fd)) is not None:
        _send(write_fd, _invoke(handler, message))
    return 0


def _invoke(handler: Any, message: dict[str, Any]) -> dict[str, Any]:
    global _request_id  # noqa: PLW0603 - the log filter reads the invocation in progress
    _request_id = message["request_id"]
    try:
        return _run(handler, message)
    finally:
        _request_id = ""


def _run(handler: Any, message: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext.from_environment(
        _request_id, message["deadline_ms"], message["invoked_function_arn"]
    )
    try:
        result = handler(message["event"], context)
    except Exception as error:  # the handler's error is the invocation's result
        _log_unhandled(error)
        return {"type": "error", "error": _error_document(error, _request_id)}
    try:
        payload = json.dumps(result, default=_decimal_to_float)
    except (TypeError, ValueError) as error:
        message_text = f"Unable to marshal response: {error}"
        print(f"[ERROR] Runtime.MarshalError: {message_text}", file=sys.stderr)
        return {
            "type": "error",
            "error": {
                "errorMessage": message_text,
                "errorType": "Runtime.MarshalError",
                "requestId": _request_id,
                "stackTrace": [],
            },
        }
    return {"type": "result", "payload": payload}


def _error_document(error: BaseException, request_id: str) -> dict[str, Any]:
    if isinstance(error, _FaultError):
        return {
            "errorMessage": str(error),
            "errorType": error.error_type,
            "requestId": request_id,
            "stackTrace": [],
        }
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _log_unhandled(error: BaseException) -> None:
    lines = traceback.format_exception(error)
    print(f"[ERROR] {type(error).__name__}: {error}\n{''.join(lines)}", end="", file=sys.stderr)


def _decimal_to_float(value: object) -> float:
    if isinstance(value, decimal.Decimal):
        return float(value)  # what the Python runtime does with DynamoDB's numbers
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> dict[str, Any] | None:
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    body = _read_exactly(fd, length)
    return None if body is None else json.loads(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None  # the emulator closed the pipe: shut down
        chunks += chunk
    return bytes(chunks)


# ---------------------------------------------------------------------------
# run: one container's life in process, timed (the bench and the packaging tests)
# ---------------------------------------------------------------------------
def run(spec_file: Path, result_file: Path) -> int:
    global _request_id  # noqa: PLW0603 - the log filter reads the invocation in progress
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    roots = [Path(entry).resolve() for entry in spec["sys_path"]]
    _enter([str(root) for root in roots], str(roots[0]))

    steps: dict[str, float] = {}
    namespace: dict[str, object] = {}
    for step in spec.get("steps", []):
        started = time.perf_counter()
        exec(step["code"], namespace)  # noqa: S102 - the spec is ours, written by the caller.
        steps[step["name"]] = time.perf_counter() - started

    result: dict[str, object] = {"steps": steps}
    if spec.get("handler"):
        started = time.perf_counter()
        handler = _load_handler(spec["handler"])
        result["import_seconds"] = time.perf_counter() - started
        events = spec["events"]
        arn = spec["invoked_function_arn"]
        latencies, responses = [], []
        for number in range(spec.get("requests", len(events))):
            event = events[number % len(events)]
            _request_id = str(uuid.UUID(int=number, version=4))
            deadline_ms = int(time.time() * 1000) + spec["timeout_ms"]
            context = LambdaContext.from_environment(_request_id, deadline_ms, arn)
            started = time.perf_counter()
            response = handler(event, context)
            latencies.append(time.perf_counter() - started)
            if number < len(events):
                responses.append(response)
        result["request_seconds"] = latencies
        result["responses"] = responses
    result["seconds_since_start"] = time.perf_counter() - PROCESS_STARTED
    result["foreign_modules"] = foreign_modules(roots)
    result["loaded_modules"] = sorted(sys.modules)
    result_file.write_text(json.dumps(result, default=_decimal_to_float), encoding="utf-8")
    return 0


def foreign_modules(allowed_roots: list[Path]) -> list[str]:
    """Loaded modules whose file is outside the artifacts and the standard library."""
    stdlib = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    roots = [*allowed_roots, *stdlib]
    this_file = Path(__file__).resolve()
    foreign = []
    for name, module in sorted(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not origin:
            continue  # Built into the interpreter or a namespace package.
        path = Path(origin).resolve()
        if path == this_file:
            continue
        inside = any(path.is_relative_to(root) for root in roots)
        if not inside or "site-packages" in path.parts:
            foreign.append(f"{name} ({path})")
    return foreign


def main(argv: list[str]) -> int:
    mode, first, second = argv
    if mode == "serve":
        return serve(int(first), int(second))
    return run(Path(first), Path(second))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
