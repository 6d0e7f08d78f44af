"""``make local-down``: stop the ``make local`` running in another terminal.

It sends SIGTERM to the ``local.up`` process named in ``.local/local-stack.json``, which then
tears everything down in order (function URLs, model server, ``terraform destroy``, moto) as
on Ctrl-C, and waits for it. If that process is gone or does not finish in time, the processes
it recorded are stopped directly (moto's stack vanishes with moto, which keeps it in memory).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.local import state

_MARKERS = {"moto": "devstack moto", "model_server": "tools.model_server"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.down", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--state-dir", type=Path, default=state.DEFAULT_STATE_DIR)
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the teardown"
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    recorded = state.read_state(state_dir)
    if recorded is None:
        print(f"no local stack is running (no {state.state_file(state_dir)})")
        return 0

    pid = recorded.get("pid")
    if state.is_running(pid, "local.up"):
        takes = recorded.get("stop_duration") or "up to a few minutes"
        print(f"stopping the local stack (pid {pid}); this takes {takes}...", flush=True)
        if state.terminate(pid, "local.up", timeout=args.timeout):
            _wait_for_state_removal(state_dir, timeout=5)
            print("stopped.")
            if state.read_state(state_dir) is None:
                return 0
        else:
            print(
                f"pid {pid} did not stop within {args.timeout:.0f} s and was killed",
                file=sys.stderr,
            )

    # local.up is gone without cleaning up: stop what it recorded, by pid.
    leftovers = _recorded_processes(recorded)
    for name, child_pid, marker, group in leftovers:
        if state.is_running(child_pid, marker):
            print(f"stopping {name} (pid {child_pid})")
            state.terminate(child_pid, marker, timeout=10, group=group)
    state.remove_state(state_dir)
    print("stopped what was left; the in-memory AWS stack went with moto.")
    return 0


def _recorded_processes(recorded: dict) -> list[tuple[str, int, str, bool]]:
    processes: list[tuple[str, int, str, bool]] = []
    for name, marker in _MARKERS.items():
        pid = (recorded.get(name) or {}).get("pid")
        if pid and (name != "moto" or recorded["moto"].get("owned")):
            # The model server leads its own process group (start_new_session).
            processes.append((name, int(pid), marker, name == "model_server"))
    for label, function in (recorded.get("functions") or {}).items():
        marker = function.get("worker_marker") or "lambda_sandbox/runtime.py"
        for pid in function.get("worker_pids") or []:
            # The group: behind the Lambda Web Adapter, the app and the adapter's extension.
            processes.append((f"{label} worker", int(pid), marker, True))
    return processes


def _wait_for_state_removal(state_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while state.read_state(state_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
