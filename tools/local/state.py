"""The state file through which ``local.down`` finds and stops a running ``local.up``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.paths import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".local"  # gitignored
STATE_FILE_NAME = "local-stack.json"


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE_NAME


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically, so a reader never sees half of it."""
    path = state_file(state_dir)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(state_file(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def remove_state(state_dir: Path) -> None:
    state_file(state_dir).unlink(missing_ok=True)


def command_line(pid: int) -> str | None:
    """The command line of a running process, or None if there is no such process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists but is someone else's
    proc = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or None


def is_running(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and still the process we recorded (pids get reused)."""
    if not pid:
        return False
    command = command_line(pid)
    return command is not None and marker in command


def terminate(pid: int, marker: str, *, timeout: float, group: bool = False) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; only if ``pid`` still runs ``marker``.

    Returns True when the process is gone.
    """
    if not is_running(pid, marker):
        return True
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    # Gone or a zombie (exited, not yet reaped by its parent: ps shows "[python] <defunct>").
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid, marker):
            return True
        time.sleep(0.2)
    try:
        send(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    time.sleep(0.2)
    return not is_running(pid, marker)
