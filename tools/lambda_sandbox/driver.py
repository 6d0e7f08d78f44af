"""Runs inside a fresh, isolated Python 3.12: a Lambda container's life, from the artifacts only.

    python3.12 -I -S -B packaging_lambda_driver.py SPEC.json RESULT.json

Started by packaging_sandbox.py with only the unpacked artifacts on sys.path (-I: no environment
variables, user site or script folder; -S: no site-packages; -B: no bytecode written, as on
Lambda's read-only file system, so every cold start compiles its imports). The spec names timed
code steps (imports), then a handler and the events to answer; the result has the timings, the
responses, and every loaded module that came from outside the artifacts and the standard
library. Standard library only: it must not depend on what it is testing.
"""

from __future__ import annotations

import importlib
import json
import sys
import sysconfig
import time
from pathlib import Path

PROCESS_STARTED = time.perf_counter()


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name = "packaged-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:packaged-function"
    log_group_name = "/aws/lambda/packaged-function"
    log_stream_name = "2026/01/01/[$LATEST]00000000000000000000000000000000"

    def __init__(self, request_number: int) -> None:
        self.aws_request_id = f"00000000-0000-4000-8000-{request_number:012d}"

    def get_remaining_time_in_millis(self) -> int:
        return 180_000


def foreign_modules(allowed_roots: list[Path]) -> list[str]:
    """Loaded modules whose file is outside the artifacts and the standard library."""
    stdlib = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    roots = [*allowed_roots, *stdlib]
    this_driver = Path(__file__).resolve()
    foreign = []
    for name, module in sorted(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not origin:
            continue  # Built into the interpreter or a namespace package.
        path = Path(origin).resolve()
        if path == this_driver:
            continue
        inside = any(path.is_relative_to(root) for root in roots)
        if not inside or "site-packages" in path.parts:
            foreign.append(f"{name} ({path})")
    return foreign


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    roots = [Path(entry).resolve() for entry in spec["sys_path"]]
    sys.path[:0] = [str(root) for root in roots]

    steps: dict[str, float] = {}
    namespace: dict[str, object] = {}
    for step in spec.get("steps", []):
        started = time.perf_counter()
        exec(step["code"], namespace)  # noqa: S102 - the spec is ours, written by the caller.
        steps[step["name"]] = time.perf_counter() - started

    result: dict[str, object] = {"steps": steps}
    if spec.get("handler"):
        module_name, function_name = spec["handler"].rsplit(".", 1)
        started = time.perf_counter()
        handler = getattr(importlib.import_module(module_name), function_name)
        result["import_seconds"] = time.perf_counter() - started
        events = spec["events"]
        latencies, responses = [], []
        for number in range(spec.get("requests", len(events))):
            event = events[number % len(events)]
            started = time.perf_counter()
            response = handler(event, LambdaContext(number))
            latencies.append(time.perf_counter() - started)
            if number < len(events):
                responses.append(response)
        result["request_seconds"] = latencies
        result["responses"] = responses
    result["seconds_since_start"] = time.perf_counter() - PROCESS_STARTED
    result["foreign_modules"] = foreign_modules(roots)
    result["loaded_modules"] = sorted(sys.modules)
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
