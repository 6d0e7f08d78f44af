#!/usr/bin/env python3
"""What the built artifacts cost at run time, next to the least any function could cost.

    python -m tools.bench [--build-dir build] [--cold-runs 7] [--warm-requests 3000]

All figures come from one run on this machine and are printed, never asserted:
- cold start: a fresh `python3.12 -I -S -B` runs AWS's own runtime interface client
  (awslambdaric, as Lambda's Python runtime does) with only the unzipped artifacts and the
  runtime's folder on sys.path, against a local Runtime API
  (tools/lambda_sandbox/runtime_api.py); it imports the handler and answers one Function URL
  event from a local fake SageMaker runtime (answering instantly). Process start to the posted
  response, for chat, qa and two floors: a bare boto3 handler that only calls invoke_endpoint
  with precompiled boto3 (what Lambda's runtime ships), and the same without bytecode. Medians,
  all alternating so drift hits all.
- warm overhead: per-request latency p50/p95 over many requests in one process, versus the bare
  boto3 invoke_endpoint loop.
- Powertools Logger: its import and construction at cold start, alone and after the app's
  other imports (what it adds to this app).
- artifact sizes; `make package` full (pip's cache warm) and no-op rebuild times.
- the layer decisions (LAYER_POLICY): size and cold import of the layer with each step undone.
- what the shipped bytecode saves: chat and the floor from the same artifacts without .pyc.
- the functions' token estimate against a real tokenizer (tools/bench/tokens.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tools.bench import observability, streaming
from tools.bench import tokens as token_estimate
from tools.lambda_sandbox import artifacts as sandbox
from tools.lambda_sandbox.runtime_api import RuntimeApi, RuntimeInvocationError
from tools.lambda_sandbox.wrapped import NamespaceError
from tools.model_server import server as sagemaker_server
from tools.model_server.scripted_backend import ScriptedBackend
from tools.packaging import build as package
from tools.paths import REPO_ROOT

GOAL_COLD_RATIO = 3.0  # issue 14: cold init + first request against the precompiled floor
GOAL_WARM_OVERHEAD_MS = 3.0
GOAL_DEPS_ZIPPED_MB = 15.0
GOAL_NOOP_BUILD_S = 0.5
# The app's third-party imports, minus Powertools: what the Logger's cost is measured after.
APP_IMPORTS = """
import boto3
from langchain_aws.chat_models.sagemaker_endpoint import ChatSagemakerEndpoint
from langchain_core.prompts import ChatPromptTemplate
"""
POWERTOOLS = "from aws_lambda_powertools import Logger\nLogger(service='bench')"


@dataclass
class Table:
    rows: list[tuple[str, ...]]

    def print(self, title: str, header: tuple[str, ...]) -> None:
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(len(header))]
        print(f"\n{title}")
        for row in [header, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


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


BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# What Lambda's Python runtime keeps in /var/runtime besides boto3: its runtime interface
# client and that client's dependencies.
RUNTIME_DISTRIBUTIONS = ("awslambdaric", "simplejson", "snapshot-restore-py")


def runtime_folder(dest: Path) -> Path:
    """A stand-in for /var/runtime: awslambdaric and its dependencies, copied from this venv
    (installed from requirements/dev.txt) with their compiled bytecode."""
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(
                f"{name} is not installed: `make venv` installs requirements/dev.txt"
            ) from None
        for file in distribution.files or ():
            source = Path(str(distribution.locate_file(file)))
            if ".dist-info" in file.parts[0] or ".." in file.parts or not source.is_file():
                continue
            target = dest / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)  # mtimes kept: the timestamped .pyc stay valid
    return dest


def without_bytecode(source: Path, dest: Path) -> Path:
    """A copy of `source` without any __pycache__ folder: what shipped before issue 14."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@dataclass(frozen=True)
class Function:
    """One function as the runtime sees it: its /var/task, its handler and its layers."""

    task: Path
    handler: str
    layers: tuple[Path, ...]


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path, endpoint_url: str) -> None:
        self.args = args
        self.scratch = scratch
        self.env = sandbox.lambda_environment(endpoint_url, scratch)
        self.event = sandbox.function_url_event()
        self.unpacked = sandbox.unpack(args.build_dir, scratch / "artifacts")
        floor_task = scratch / "artifacts" / "task" / "floor"
        self.floor_handler = write_floor_function(floor_task)
        self.floor_path = [floor_task, self.unpacked.layer]
        self.runtime = runtime_folder(scratch / "runtime")
        self.python = sandbox.runtime_python()

    def floor_function(self) -> Function:
        """The bare boto3 handler with the precompiled layer: what every ratio divides by."""
        return Function(self.floor_path[0], self.floor_handler, (self.unpacked.layer,))

    def functions(self, *, bytecode_what_if: bool) -> dict[str, Function]:
        """The cold-start contestants: the functions, and the floors with and without .pyc."""
        layer = self.unpacked.layer
        bare_layer = without_bytecode(layer, self.scratch / "no-pyc" / "opt" / "python")
        floor_task = self.floor_path[0]
        contestants = {
            "chat": Function(self.unpacked.task("chat"), sandbox.HANDLERS["chat"], (layer,)),
            "qa": Function(self.unpacked.task("qa"), sandbox.HANDLERS["qa"], (layer,)),
            "floor": self.floor_function(),
            "floor, no .pyc": Function(floor_task, self.floor_handler, (bare_layer,)),
        }
        if bytecode_what_if:
            bare_chat = without_bytecode(
                self.unpacked.task("chat"), self.scratch / "no-pyc" / "task" / "chat"
            )
            contestants["chat, no .pyc"] = Function(
                bare_chat, sandbox.HANDLERS["chat"], (bare_layer,)
            )
        return contestants

    def cold_start(self, function: Function, timeout: float = 120) -> float:
        """Start a fresh runtime for `function` and send it one event: seconds from the
        process's start to its posted answer."""
        api = RuntimeApi()
        env = {
            **self.env,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(function.task),
            "LAMBDA_RUNTIME_DIR": str(self.runtime),
            "_HANDLER": function.handler,
        }
        command = [
            self.python, "-I", "-S", "-B", str(BOOTSTRAP),
            str(function.task), str(self.runtime), function.handler,
            *(str(layer) for layer in function.layers),
        ]  # fmt: skip
        deadline_ms = int((time.time() + timeout) * 1000)
        invocation = api.submit(self.event, str(uuid.uuid4()), deadline_ms, sandbox.FUNCTION_ARN)
        with tempfile.TemporaryFile() as log:
            started = time.perf_counter()
            process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                answer: object = json.loads(b"".join(invocation.chunks(time.monotonic() + timeout)))
            except (RuntimeInvocationError, TimeoutError, ValueError) as error:
                answer = error
            finally:
                process.kill()
                process.wait()
                api.close()
            log.seek(0)
            output = log.read().decode("utf-8", errors="replace")
        if not isinstance(answer, dict) or answer.get("statusCode") != 200:
            raise RuntimeError(
                f"{function.handler} answered {str(answer)[:2000]}\n{output[-4000:]}"
            )
        return invocation.answered_at - started

    def run(self, sys_path: Sequence[Path], handler: str, requests: int = 1) -> sandbox.Run:
        run = sandbox.run_isolated(
            sys_path, self.env, handler=handler, events=[self.event], requests=requests
        )
        status = run.responses[0]["statusCode"]
        if status != 200:
            raise RuntimeError(f"{handler} answered {status}: {run.responses[0]['body']}")
        return run

    def median_cold(self, runners: dict[str, Callable[[], sandbox.Run]]) -> dict[str, list]:
        """Each runner `cold_runs` times, interleaved so machine drift hits all alike."""
        runs: dict[str, list] = {name: [] for name in runners}
        for _ in range(self.args.cold_runs):
            for name, runner in runners.items():
                runs[name].append(runner())
        return runs


def cold_section(bench: Bench) -> list[tuple[str, ...]]:
    contestants = bench.functions(bytecode_what_if=not bench.args.skip_bytecode)
    runs: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(bench.args.cold_runs):
        for name, function in contestants.items():
            runs[name].append(bench.cold_start(function))
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    floor, bare_floor = medians["floor"], medians["floor, no .pyc"]
    rows = []
    for name, median in medians.items():
        is_floor = name.startswith("floor")
        rows.append(
            (
                f"cold: {name}",
                ms(median),
                f"{min(runs[name]) * 1000:.0f}-{max(runs[name]) * 1000:.0f} ms",
                "" if name == "floor" else f"{median / floor:.1f}x",
                "" if is_floor else f"{median / bare_floor:.1f}x",
                "" if is_floor or "no .pyc" in name else met(median <= GOAL_COLD_RATIO * floor),
            )
        )
    return rows


def snap_start_section(bench: Bench) -> list[tuple[str, ...]]:
    """What a SnapStart restore leaves of a cold start: the first request after the init.

    The restore itself happens in Lambda's microVM layer and cannot be measured here; AWS
    reports it in the function's log as "Restore Duration".
    """
    rows = []
    for name in ("chat", "qa"):
        seconds = [
            bench.run(bench.unpacked.sys_path(name), sandbox.HANDLERS[name]).request_seconds[0]
            for _ in range(max(3, bench.args.cold_runs // 2))
        ]
        rows.append((f"{name}: first request after init", ms(statistics.median(seconds))))
    return rows


def warm_section(bench: Bench) -> list[tuple[str, ...]]:
    requests = bench.args.warm_requests
    unpacked = bench.unpacked
    floor = bench.run(bench.floor_path, bench.floor_handler, requests)
    floor_latencies = floor.request_seconds[1:]  # The first request is the cold one.
    floor_p50 = percentile(floor_latencies, 0.5)
    rows = [
        (
            "warm: floor",
            ms(floor_p50),
            ms(percentile(floor_latencies, 0.95)),
            "",
            "",
        )
    ]
    for name in ("chat", "qa"):
        run = bench.run(unpacked.sys_path(name), sandbox.HANDLERS[name], requests)
        latencies = run.request_seconds[1:]
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        overhead = p50 - floor_p50
        rows.append(
            (
                f"warm: {name}",
                ms(p50),
                ms(p95),
                f"+{overhead * 1000:.2f} ms p50",
                met(overhead * 1000 <= GOAL_WARM_OVERHEAD_MS),
            )
        )
    return rows


def powertools_section(bench: Bench) -> list[tuple[str, ...]]:
    layer = [bench.unpacked.layer]
    marginal, alone = [], []
    for _ in range(bench.args.cold_runs):
        after_app = sandbox.run_isolated(
            layer, bench.env, steps=[("app", APP_IMPORTS), ("powertools", POWERTOOLS)]
        )
        marginal.append(after_app.steps["powertools"])
        first = sandbox.run_isolated(layer, bench.env, steps=[("powertools", POWERTOOLS)])
        alone.append(first.steps["powertools"])
    return [
        ("Powertools Logger, after the app's imports", ms(statistics.median(marginal))),
        ("Powertools Logger, imported first", ms(statistics.median(alone))),
    ]


def variants_section(bench: Bench) -> list[tuple[str, ...]]:
    """Undo LAYER_POLICY one step at a time; size and cold chat import of each layer."""
    policy = package.LAYER_POLICY
    variants = [
        ("pinned as pip installs them", package.LayerPolicy(drop_unused_files=False)),
        ("- numpy, zstandard", replace(policy, botocore_services=None, drop_unused_files=False)),
        ("- tests, stubs, C sources, examples", replace(policy, botocore_services=None)),
        ("- botocore models but ours", policy),
    ]
    rows = []
    for label, variant in variants:
        build_dir = bench.scratch / "variants" / label.replace(" ", "_")
        build_dir.mkdir(parents=True)
        epoch = package.source_date_epoch()
        # Without bytecode: the policy's steps are measured as they were decided, before it.
        package.build_layer(build_dir / "layer.zip", build_dir, epoch, variant, bytecode=False)
        shutil.copy(bench.args.build_dir / "chat.zip", build_dir / "chat.zip")
        stats = package.zip_stats(build_dir / "layer.zip")
        unpacked = sandbox.unpack(build_dir, build_dir / "unpacked", functions=("chat",))
        imports = [
            bench.run(unpacked.sys_path("chat"), sandbox.HANDLERS["chat"]).import_seconds
            for _ in range(max(3, bench.args.cold_runs // 2))
        ]
        shutil.rmtree(build_dir / "unpacked")
        rows.append(
            (
                label,
                f"{stats.zipped / package.MIB:.2f} MiB",
                f"{stats.unzipped / package.MIB:.2f} MiB",
                ms(statistics.median(imports)),
            )
        )
    shipped_stats = package.zip_stats(bench.args.build_dir / "layer.zip")
    rows.append(
        (
            "+ bytecode (shipped)",
            f"{shipped_stats.zipped / package.MIB:.2f} MiB",
            f"{shipped_stats.unzipped / package.MIB:.2f} MiB",
            ms(
                statistics.median(
                    bench.run(
                        bench.unpacked.sys_path("chat"), sandbox.HANDLERS["chat"]
                    ).import_seconds
                    for _ in range(max(3, bench.args.cold_runs // 2))
                )
            ),
        )
    )
    # boto3 from the runtime instead: the same layer without boto3 and what only it needs.
    runtime_provided = ("boto3/", "botocore/", "s3transfer/", "jmespath/")
    shipped = bench.args.build_dir / "layer.zip"
    with zipfile.ZipFile(shipped) as archive:
        infos = archive.infolist()
    boto = [i for i in infos if i.filename.removeprefix("python/").startswith(runtime_provided)]
    rows.append(
        (
            "  boto3 from the runtime instead",
            f"-{sum(i.compress_size for i in boto) / package.MIB:.2f} MiB",
            f"-{sum(i.file_size for i in boto) / package.MIB:.2f} MiB",
            "(same code)",
        )
    )
    return rows


def import_profile_section(bench: Bench, top: int = 8) -> list[tuple[str, ...]]:
    """Where chat's cold import goes: -X importtime's self times summed by top-level package."""
    run = sandbox.run_isolated(
        bench.unpacked.sys_path("chat"),
        bench.env,
        handler=sandbox.HANDLERS["chat"],
        events=[bench.event],
        flags=("-X", "importtime"),
    )
    by_package: dict[str, int] = {}
    for line in run.log.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        top_level = name.split(".")[0]
        group = "(standard library)" if top_level in sys.stdlib_module_names else top_level
        by_package[group] = by_package.get(group, 0) + int(self_us)
    total = sum(by_package.values())
    ranked = sorted(by_package.items(), key=lambda item: -item[1])
    rest = sum(us for _, us in ranked[top:])
    rows = [(name, ms(us / 1e6), f"{us / total:.0%}") for name, us in ranked[:top]]
    rows.append((f"{len(ranked) - top} others", ms(rest / 1e6), f"{rest / total:.0%}"))
    rows.append(("total (one run, under -X importtime)", ms(total / 1e6), "100%"))
    return rows


def build_time_section() -> list[tuple[str, ...]]:
    with tempfile.TemporaryDirectory(prefix="bench-build-") as build_dir:
        command = ["make", "--no-print-directory", "package", f"BUILD_DIR={build_dir}"]
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
            timings.append(time.perf_counter() - started)
    full, noop = timings
    return [
        ("make package, full (pip cache warm)", f"{full:.1f} s", ""),
        ("make package, nothing changed", f"{noop:.3f} s", met(noop <= GOAL_NOOP_BUILD_S)),
    ]


def size_section(build_dir: Path) -> list[tuple[str, ...]]:
    rows = []
    for name in package.ARTIFACTS:
        stats = package.zip_stats(build_dir / f"{name}.zip")
        goal = ""
        if name == package.LAYER:
            goal = met(stats.zipped <= GOAL_DEPS_ZIPPED_MB * 1_000_000)
        rows.append(
            (
                f"{name}.zip",
                f"{stats.zipped / package.MIB:.2f} MiB ({stats.zipped / 1e6:.2f} MB)",
                f"{stats.unzipped / package.MIB:.2f} MiB",
                str(stats.files),
                goal,
            )
        )
    return rows


def streaming_tables(args: argparse.Namespace, bench: Bench) -> None:
    floor = bench.floor_function()
    try:
        first, cold = streaming.run_all(
            args.build_dir, args.stream_requests, args.cold_runs, lambda: bench.cold_start(floor)
        )
    except NamespaceError as error:
        print(f"\nStreaming path skipped: {error}")
        return
    Table(first).print(
        "Streaming, warm: the endpoint's first token to the client's, through the app, the "
        f"local Lambda Web Adapter and URL (goal: p50 <= {streaming.GOAL_FIRST_TOKEN_MS:g} ms; "
        "minimal: a standard-library app, the adapter and URL alone)",
        ("", "p50", "max", "goal"),
    )
    Table(cold).print(
        "Streaming, cold: a new environment (mounts, /opt/bootstrap, start script, imports, "
        "readiness) to the first response byte, against the precompiled floor's cold start "
        "in the same loop (goal: <= 3x)",
        ("", "median", "/ floor", "goal"),
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    python = subprocess.run(
        [sandbox.runtime_python(), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {python}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh interpreters per figure")
    parser.add_argument("--warm-requests", type=int, default=3000)
    parser.add_argument("--skip-variants", action="store_true", help="skip the layer decisions")
    parser.add_argument("--skip-build-times", action="store_true", help="skip timing make")
    parser.add_argument(
        "--skip-streaming", action="store_true", help="skip the Lambda Web Adapter path"
    )
    parser.add_argument(
        "--stream-requests", type=int, default=30, help="warm streamed requests per function"
    )
    parser.add_argument(
        "--skip-bytecode", action="store_true", help="skip chat without .pyc (the step's effect)"
    )
    args = parser.parse_args(argv)
    args.build_dir = args.build_dir.resolve()

    print(f"machine: {machine()}")
    print(f"artifacts: {args.build_dir}; cold figures are medians of {args.cold_runs} runs")
    Table(size_section(args.build_dir)).print(
        "Artifact sizes (goal: dependencies <= 15 MB zipped)",
        ("artifact", "zipped", "unzipped", "files", "goal"),
    )
    # Without TCP_NODELAY the fake's header and body writes wait out the client's delayed ACK:
    # 44 ms per request here, which would hide the functions' own overhead entirely.
    sagemaker_server._Handler.disable_nagle_algorithm = True
    server = sagemaker_server.SageMakerTGIServer(
        ScriptedBackend(record_calls=False),
        sandbox.ENDPOINT_NAME,
        max_input_tokens=1348,
        max_total_tokens=2048,
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        server.start()
        try:
            bench = Bench(args, Path(scratch), server.url)
            Table(cold_section(bench)).print(
                "Cold start through awslambdaric: process start to the first answer, instant "
                f"endpoint (goal: <= {GOAL_COLD_RATIO:g}x the precompiled floor)",
                ("", "median", "range", "/ floor", "/ floor, no .pyc", "goal"),
            )
            Table(snap_start_section(bench)).print(
                "With SnapStart on AWS, a restore replaces the init: what remains is the "
                "restore (not measurable here) and the first request",
                ("", "median"),
            )
            Table(warm_section(bench)).print(
                f"Warm requests ({args.warm_requests} per function, instant endpoint; "
                "goal: <= +3 ms p50 over the floor)",
                ("", "p50", "p95", "overhead", "goal"),
            )
            Table(powertools_section(bench)).print(
                "AWS Lambda Powertools Logger at cold start (import + Logger())", ("", "cost")
            )
            Table(
                observability.section(bench.unpacked, bench.env, args.cold_runs, args.build_dir)
            ).print(observability.TITLE, observability.HEADER)
            Table(import_profile_section(bench)).print(
                "Where chat's cold import goes (self time by top-level package)",
                ("package", "time", "share"),
            )
            if not args.skip_streaming:
                streaming_tables(args, bench)
            if not args.skip_variants:
                Table(variants_section(bench)).print(
                    "Layer decisions, each row adding one step of LAYER_POLICY",
                    ("layer", "zipped", "unzipped", "chat import"),
                )
        finally:
            server.stop()
    if not args.skip_build_times:
        Table(build_time_section()).print(
            "Build times (goal: no-op <= 0.5 s)", ("", "time", "goal")
        )
    Table((estimate := token_estimate.section())[1]).print(estimate[0], token_estimate.HEADER)
    print(f"\nreproduce: make bench (python -m tools.bench {' '.join(sys.argv[1:])})")


if __name__ == "__main__":
    main()
