"""Local Lambda functions: the deployed artifacts unpacked, served by a pool of warm workers.

What an invocation meets, as on AWS:

* the function's **deployed artifacts**: its zip unpacked as /var/task and its layers' zips as
  /opt (later layers over earlier ones), run by a fresh Python interpreter of the function's
  runtime in isolated mode (``-I -S``, see ``runtime.py``), so nothing but the standard library
  and the artifacts is importable (no runtime-provided boto3: a package that forgets a
  dependency fails here);
* **warm workers**: an interpreter imports the handler once (the init phase, logged as a cold
  start) and serves invocation after invocation; a timeout, crash or init failure discards it
  and the next invocation starts a fresh one;
* the function's **handler, environment, timeout and memory size**, Lambda's reserved
  variables (``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, ...), a context object with
  ``get_remaining_time_in_millis()``.

The function's own output (prints, logging) is relayed line by line, prefixed with its name.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tools.lambda_sandbox.execution import (
    FunctionSpec,
    InvocationError,
    Log,
    WorkerSetup,
    init_timed_out,
    relay_output,
    runtime_exited,
    timed_out,
)
from tools.lambda_sandbox.runtime_api import Invocation
from tools.lambda_sandbox.wrapped import WrappedWorker
from tools.paths import find_python

RUNTIME_SCRIPT = Path(__file__).with_name("runtime.py")
_HEADER = struct.Struct(">I")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"


# ---------------------------------------------------------------------------
# Execution environments
# ---------------------------------------------------------------------------
class _Worker:
    """One warm interpreter running ``runtime.py serve`` (a Lambda execution environment)."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.spec = setup.spec
        self.log = setup.log
        self.ready = False  # the init phase has finished
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        self._read_fd, self._write_fd = parent_read, parent_write
        self.process = subprocess.Popen(
            [
                setup.python,
                "-I",
                "-S",
                "-u",
                str(RUNTIME_SCRIPT),
                "serve",
                str(child_read),
                str(child_write),
            ],
            cwd=setup.task,
            env={**setup.env, "LOCAL_LAMBDA_LAYER_ROOT": str(setup.opt)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(child_read, child_write),
            # Own session: Ctrl-C in the terminal reaches the orchestrator, which stops us.
            start_new_session=True,
        )
        os.close(child_read)
        os.close(child_write)
        self._relays = relay_output(self.process, self.log, self.spec.name)

    def ensure_ready(self) -> None:
        """Wait for the init phase of a new worker (logged as a cold start)."""
        if self.ready:
            return
        init_ms = self._wait_init(self.setup.init_limit)
        self.ready = True
        self.log(f"[{self.spec.name}] cold start: init {init_ms:.0f} ms")

    def _wait_init(self, timeout: float) -> float:
        message = self._receive(time.monotonic() + timeout)
        if message is None:
            self.kill()
            raise InvocationError(init_timed_out(timeout))
        if message.get("type") == "init_error":
            self.kill()
            raise InvocationError(message["error"])
        return float(message["init_ms"])

    def invoke(self, event: dict[str, Any], request_id: str, deadline: float) -> str:
        """Run the handler; returns its result as JSON text or raises InvocationError."""
        deadline_ms = int((time.time() + deadline - time.monotonic()) * 1000)
        self._send(
            {
                "request_id": request_id,
                "event": event,
                "deadline_ms": deadline_ms,
                "invoked_function_arn": self.spec.invoked_arn,
            }
        )
        message = self._receive(deadline)
        if message is None:
            self.kill()
            raise InvocationError(timed_out(self.spec, request_id))
        if message["type"] == "error":
            raise InvocationError(message["error"])
        return str(message["payload"])

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        try:
            view = memoryview(_HEADER.pack(len(data)) + data)
            while view:
                view = view[os.write(self._write_fd, view) :]
        except BrokenPipeError:
            pass  # the worker died; _receive reports it

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None on timeout; raises InvocationError if the worker died."""
        header = self._read(_HEADER.size, deadline)
        if header is None:
            return None
        body = self._read(_HEADER.unpack(header)[0], deadline)
        return None if body is None else json.loads(body)

    def _read(self, size: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._read_fd, size - len(data))
            if not chunk:
                raise InvocationError(runtime_exited(self.process.wait()))
            data += chunk
        return bytes(data)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read_fd = self._write_fd = -1
        for relay in self._relays:
            relay.join(timeout=5)

    def stop(self) -> None:
        """Close the pipe (the worker exits on EOF), then make sure it is gone."""
        with contextlib.suppress(OSError):
            os.close(self._write_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.kill()


class LocalFunction:
    """A function's unpacked artifacts and its pool of warm workers."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        python: str | None = None,
        base_env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        max_concurrency: int = 2,
        log: Log = print,
    ) -> None:
        self.spec = spec
        self.python = python or find_python(spec.python_version)
        self.log = log
        self.max_concurrency = max_concurrency
        self._root = Path(tempfile.mkdtemp(prefix=f"lambda-{spec.name}-", dir=work_dir))
        self.task_root = self._root / "task"
        _unzip(spec.code_zip, self.task_root)
        self.opt_root = _layers(spec.layer_zips)
        self.env = function_env(spec, base_env or {}, self.task_root)
        self._idle: list[Any] = []  # _Worker or WrappedWorker
        self._all: set[Any] = set()
        self._available = threading.Condition()
        self._closed = False

    def invoke(self, event: dict[str, Any], request_id: str) -> str:
        """Run one invocation on a warm (or new) worker; JSON text or InvocationError."""
        worker = self._acquire()
        healthy = False
        try:
            worker.ensure_ready()
            payload = worker.invoke(event, request_id, time.monotonic() + self.spec.timeout_seconds)
            healthy = True
            return payload
        except InvocationError as error:
            error.document.setdefault("requestId", request_id)
            # An error raised by the handler leaves the worker warm; anything else ends it.
            healthy = (
                worker.ready
                and worker.alive
                and error.document.get("errorType")
                not in (
                    "Sandbox.Timedout",
                    "Runtime.ExitError",
                )
            )
            raise
        finally:
            self._release(worker, healthy)

    def _acquire(self) -> Any:
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name} is stopped")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.max_concurrency:
                    worker = self._new_worker()
                    self._all.add(worker)
                    return worker
                self._available.wait()

    def _new_worker(self) -> _Worker | WrappedWorker:
        setup = WorkerSetup(
            self.spec, self.python, self.task_root, self.opt_root, self.env, self.log
        )
        return WrappedWorker(setup) if self.spec.exec_wrapper else _Worker(setup)

    @contextlib.contextmanager
    def stream(self, event: dict[str, Any], request_id: str) -> Iterator[Invocation]:
        """A response stream (functions with an exec wrapper): iterate
        ``invocation.chunks(deadline)`` inside the ``with``; the environment is busy until
        the stream ends, and one that fails or is abandoned mid-stream is discarded."""
        if not self.spec.exec_wrapper:
            raise RuntimeError(f"{self.spec.name} has no exec wrapper: it cannot stream")
        worker = self._acquire()
        healthy = False
        try:
            worker.ensure_ready()
            deadline = time.monotonic() + self.spec.timeout_seconds
            invocation = worker.submit(event, request_id, deadline)
            invocation.deadline = deadline
            yield invocation
            healthy = invocation.finished
        except InvocationError as error:
            error.document.setdefault("requestId", request_id)
            raise
        finally:
            self._release(worker, healthy)

    def _release(self, worker: Any, healthy: bool) -> None:
        with self._available:
            if healthy and worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
                worker.kill()
            self._available.notify()

    def warm(self) -> None:
        """Start one worker and run its init phase now, so import errors show at startup."""
        worker = self._acquire()
        try:
            worker.ensure_ready()
        finally:
            self._release(worker, healthy=worker.ready)

    @property
    def worker_marker(self) -> str:
        """What a worker's command line shows once it runs (``make local-down`` checks it
        before stopping a pid): the runtime script, or behind an exec wrapper the runtime's
        interpreter as ``python3`` runs it (``wrapped.interpreter_dir``)."""
        if self.spec.exec_wrapper:
            return f"{Path(self.python).resolve()} -S"
        return "lambda_sandbox/runtime.py"

    @property
    def worker_pids(self) -> list[int]:
        with self._available:
            return [w.process.pid for w in self._all]

    def close(self) -> None:
        with self._available:
            self._closed = True
            workers, self._all, self._idle = list(self._all), set(), []
            self._available.notify_all()
        for worker in workers:
            worker.stop()
        shutil.rmtree(self._root, ignore_errors=True)


_LAYERS: dict[tuple[tuple[str, int, int], ...], Path] = {}
_LAYERS_LOCK = threading.Lock()


def _layers(zips: tuple[Path, ...]) -> Path:
    """The layers unzipped as /opt (later over earlier), once per process for the same zips:
    /opt is read-only to a function, so its environments can share one copy."""
    key = tuple((str(z.resolve()), z.stat().st_mtime_ns, z.stat().st_size) for z in zips)
    with _LAYERS_LOCK:
        if key not in _LAYERS:
            root = Path(tempfile.mkdtemp(prefix="lambda-layers-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            opt = root / "opt"
            opt.mkdir()
            for layer in zips:
                _unzip(layer, opt)
            _LAYERS[key] = opt
        return _LAYERS[key]


def _unzip(archive: Path, destination: Path) -> None:
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist (run `make package`)")
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(destination)  # extractall drops absolute and ../ members
        for member in zipped.infolist():
            mode = (member.external_attr >> 16) & 0o777
            target = destination / member.filename
            # Lambda keeps the zip's Unix modes (an executable start script stays one).
            if mode and not member.is_dir() and target.is_file():
                target.chmod(mode | 0o400)


def function_env(
    spec: FunctionSpec, base_env: Mapping[str, str], task_root: Path
) -> dict[str, str]:
    """The environment Lambda gives a function: reserved variables, then the function's own."""
    stream_date = time.strftime("%Y/%m/%d", time.gmtime())
    env = {
        "PATH": _DEFAULT_PATH,  # Lambda's, not this shell's: nothing of the caller leaks in
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{stream_date}/[{spec.version}]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if spec.snap_start else "on-demand",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "_HANDLER": spec.handler,
        # A function has no AWS config files and no instance metadata: only its role's
        # credentials, which base_env carries.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(base_env)
    env.update(spec.environment)
    return env
