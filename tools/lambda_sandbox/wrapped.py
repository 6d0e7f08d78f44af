"""Execution environments of functions with an exec wrapper (``AWS_LAMBDA_EXEC_WRAPPER``).

This is how a function behind AWS's Lambda Web Adapter runs, so each environment does what
Lambda does:

* a **mount namespace** where the function's zip is ``/var/task`` and its layers are ``/opt``,
  both read-only (``unshare -m --propagation private`` then ``mount --bind``, as root;
  ``unshare -Urm``, a user namespace, where unprivileged ones are allowed): the start script
  and the layer's absolute paths (``/opt/bootstrap``, ``/opt/extensions/...``) work
  unchanged;
* the **extensions** in ``/opt/extensions`` started first, then the wrapper with the
  runtime's command line (``/opt/bootstrap /var/runtime/bootstrap``);
* Lambda's **environment** (``LAMBDA_TASK_ROOT=/var/task``, ``AWS_LAMBDA_RUNTIME_API`` of a
  Runtime API of its own, see ``runtime_api.py``), with ``PATH`` led by the runtime's
  interpreter as ``python3``/``python`` (Lambda's ``/var/lang/bin``), run with ``-S``: only
  the standard library and what the function puts on its path are importable.

Lambda isolates each environment's network too; here they share the machine's, so each
environment's app gets a port of its own: ``AWS_LWA_PORT`` (and the readiness check's) is set
to a free port, whatever the function's configuration says.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.lambda_sandbox.execution import (
    InvocationError,
    WorkerSetup,
    init_timed_out,
    relay_output,
    runtime_exited,
    timed_out,
)
from tools.lambda_sandbox.runtime_api import (
    Invocation,
    RuntimeApi,
    RuntimeInvocationError,
)

TASK_MOUNT = Path("/var/task")
OPT_MOUNT = Path("/opt")
LAMBDA_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
# Runs inside the namespace: the mounts, the extensions, then the wrapper (exec: same process).
_LAUNCH = """
set -e
mount --bind "$1" /var/task
mount --bind "$2" /opt
# Read-only, as on Lambda (only /tmp is writable): no stray bytecode or state written there.
mount -o remount,bind,ro /var/task
mount -o remount,bind,ro /opt
for extension in /opt/extensions/*; do
  if [ -f "$extension" ] && [ -x "$extension" ]; then "$extension" & fi
done
exec "$AWS_LAMBDA_EXEC_WRAPPER" /var/runtime/bootstrap
"""


class NamespaceError(RuntimeError):
    """This machine cannot give a function its own /var/task and /opt; the message says why."""


@functools.cache
def namespace_command() -> tuple[str, ...]:
    """The ``unshare`` prefix that works here, or NamespaceError with what to do."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        raise NamespaceError(
            "functions behind the Lambda Web Adapter need `unshare` and `mount` (util-linux) "
            "to see their code at /var/task and their layers at /opt"
        )
    if not TASK_MOUNT.is_dir():
        if os.geteuid() != 0:
            raise NamespaceError(
                f"{TASK_MOUNT} does not exist: create it once (`sudo mkdir -p {TASK_MOUNT}`); "
                "each function's code is mounted over it in a namespace of its own"
            )
        TASK_MOUNT.mkdir(parents=True, exist_ok=True)
    candidates = [("unshare", "-m", "--propagation", "private")] if os.geteuid() == 0 else []
    candidates.append(("unshare", "-Urm", "--propagation", "private"))
    errors = []
    for command in candidates:
        probe = subprocess.run(
            [*command, "mount", "--bind", "/", str(TASK_MOUNT)],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return command
        errors.append(f"`{' '.join(command)}`: {probe.stderr.strip() or probe.returncode}")
    raise NamespaceError(
        "cannot create a mount namespace for a function behind the Lambda Web Adapter ("
        + "; ".join(errors)
        + "). Run as root, or allow unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04+ "
        "kernel.apparmor_restrict_unprivileged_userns=0); see docs/local-stack.md"
    )


def interpreter_dir(root: Path, python: str) -> Path:
    """Lambda's /var/lang/bin: ``python3.X``, ``python3`` and ``python`` run the runtime's
    interpreter without site-packages (``-S``)."""
    real = Path(python).resolve()
    if real.is_relative_to(OPT_MOUNT) or real.is_relative_to(TASK_MOUNT):
        raise NamespaceError(
            f"the interpreter {real} lives under /opt or /var/task, which the "
            "function's mounts hide; pass another with --function-python"
        )
    folder = root / "lang" / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    version = real.name if real.name.startswith("python3.") else "python3"
    for name in {version, "python3", "python"}:
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec "{real}" -S "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WrappedWorker:
    """One execution environment: the wrapper's process tree and its Runtime API."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.spec = setup.spec
        self.setup = setup
        self.log = setup.log
        self.ready = False
        isolation = namespace_command()  # NamespaceError before anything starts
        lang_bin = interpreter_dir(setup.task.parent, setup.python)
        self.api = RuntimeApi(on_log=setup.log)
        self.port = free_port()
        self.env = {
            **setup.env,
            "PATH": f"{lang_bin}:{LAMBDA_PATH}",
            "LAMBDA_TASK_ROOT": str(TASK_MOUNT),
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LWA_PORT": str(self.port),
        }
        if "AWS_LWA_READINESS_CHECK_PORT" in self.env:
            self.env["AWS_LWA_READINESS_CHECK_PORT"] = str(self.port)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*isolation, "/bin/sh", "-c", _LAUNCH, "launch", str(setup.task), str(setup.opt)],
            cwd="/",
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one process group: the wrapper, the app, the extensions
        )
        self._relays = relay_output(self.process, self.log, self.spec.name)

    def ensure_ready(self) -> None:
        """Wait for the init phase: the runtime (the adapter) asks for its first event."""
        if self.ready:
            return
        limit = self.setup.init_limit
        deadline = self.started + limit
        while not self.api.init_done.wait(0.05):
            if self.process.poll() is not None:
                self.kill()
                raise InvocationError(runtime_exited(self.process.returncode))
            if time.monotonic() > deadline:
                self.kill()
                raise InvocationError(init_timed_out(limit))
        if self.api.init_error is not None:
            self.kill()
            raise InvocationError({**self.api.init_error, "stackTrace": []})
        self.ready = True
        init_ms = (time.monotonic() - self.started) * 1000
        self.log(f"[{self.spec.name}] cold start: init {init_ms:.0f} ms (through the exec wrapper)")

    def submit(self, event: dict[str, Any], request_id: str, deadline: float) -> Invocation:
        deadline_ms = int((time.time() + deadline - time.monotonic()) * 1000)
        return self.api.submit(event, request_id, deadline_ms, self.spec.invoked_arn)

    def invoke(self, event: dict[str, Any], request_id: str, deadline: float) -> str:
        """A buffered invocation: the whole response, as JSON text, or InvocationError."""
        invocation = self.submit(event, request_id, deadline)
        try:
            body = b"".join(invocation.chunks(deadline))
        except RuntimeInvocationError as error:
            raise InvocationError(error.document) from None
        except TimeoutError:
            self.kill()
            raise InvocationError(timed_out(self.spec, request_id)) from None
        return body.decode("utf-8", errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        # The whole group, even when the wrapper has exited: the extensions outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.api.close()
        for relay in self._relays:
            relay.join(timeout=5)

    def stop(self) -> None:
        """Lambda's shutdown: SIGTERM to the runtime, then SIGKILL."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        self.kill()
