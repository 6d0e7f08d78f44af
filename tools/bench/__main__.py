#!/usr/bin/env python3
"""What the built artifacts cost at run time, next to the least any function could cost.

    python -m tools.bench [--build-dir build] [--cold-runs 7] [--warm-requests 3000]

All figures come from one run on this machine and are printed, never asserted:
- cold init: a fresh `python3.12 -I -S -B` with only the unzipped artifacts on sys.path imports
  the handler and answers one Function URL event from a local fake SageMaker runtime (answering
  instantly), versus a bare boto3 handler that only calls invoke_endpoint, run from the same
  layer (the floor). Medians, the two alternating so drift hits both.
- warm overhead: per-request latency p50/p95 over many requests in one process, versus the bare
  boto3 invoke_endpoint loop.
- Powertools Logger: its import and construction at cold start, alone and after the app's
  other imports (what it adds to this app).
- artifact sizes; `make package` full (pip's cache warm) and no-op rebuild times.
- the layer decisions (LAYER_POLICY): size and cold import of the layer with each step undone.
- what shipping precompiled bytecode would save (not shipped: see README, Packaging).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tools.lambda_sandbox import artifacts as sandbox
from tools.model_server import server as sagemaker_server
from tools.model_server.scripted_backend import ScriptedBackend
from tools.packaging import build as package
from tools.paths import REPO_ROOT

GOAL_COLD_RATIO = 2.0
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


def cold_section(bench: Bench) -> tuple[list[tuple[str, ...]], dict[str, float]]:
    unpacked = bench.unpacked
    runs = bench.median_cold(
        {
            "chat": lambda: bench.run(unpacked.sys_path("chat"), sandbox.HANDLERS["chat"]),
            "qa": lambda: bench.run(unpacked.sys_path("qa"), sandbox.HANDLERS["qa"]),
            "floor": lambda: bench.run(bench.floor_path, bench.floor_handler),
        }
    )
    medians = {name: statistics.median(r.cold_seconds for r in rs) for name, rs in runs.items()}
    rows = []
    for name in ("chat", "qa", "floor"):
        rs = runs[name]
        rows.append(
            (
                f"cold: {name}",
                ms(statistics.median(r.import_seconds for r in rs)),
                ms(statistics.median(r.request_seconds[0] for r in rs)),
                ms(medians[name]),
                ms(statistics.median(r.wall_seconds for r in rs)),
                "" if name == "floor" else f"{medians[name] / medians['floor']:.1f}x floor",
                "" if name == "floor" else met(medians[name] <= GOAL_COLD_RATIO * medians["floor"]),
            )
        )
    return rows, medians


def bytecode_section(bench: Bench) -> list[tuple[str, ...]]:
    """Cold init if the artifacts carried .pyc files (compiled here, in a copy)."""
    compiled = bench.scratch / "compiled"
    shutil.copytree(bench.unpacked.root, compiled)
    compileall.compile_dir(
        compiled,
        quiet=2,
        workers=os.cpu_count() or 1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    unpacked = sandbox.Unpacked(compiled)
    floor_path = [compiled / "task" / "floor", unpacked.layer]
    runs = bench.median_cold(
        {
            "chat": lambda: bench.run(unpacked.sys_path("chat"), sandbox.HANDLERS["chat"]),
            "floor": lambda: bench.run(floor_path, bench.floor_handler),
        }
    )
    chat = statistics.median(r.cold_seconds for r in runs["chat"])
    floor = statistics.median(r.cold_seconds for r in runs["floor"])
    return [
        ("cold: chat, with .pyc (what-if)", ms(chat), f"{chat / floor:.1f}x floor"),
        ("cold: floor, with .pyc (what-if)", ms(floor), ""),
    ]


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
        ("- botocore models but ours (shipped)", policy),
    ]
    rows = []
    for label, variant in variants:
        build_dir = bench.scratch / "variants" / label.replace(" ", "_")
        build_dir.mkdir(parents=True)
        epoch = package.source_date_epoch()
        package.build_layer(build_dir / "layer.zip", build_dir, epoch, variant)
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
    parser.add_argument("--skip-bytecode", action="store_true", help="skip the .pyc what-if")
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
            cold_rows, _ = cold_section(bench)
            Table(cold_rows).print(
                "Cold start: init + first request, fresh interpreter, instant endpoint "
                "(goal: <= 2x floor)",
                ("", "import", "1st request", "init+1st", "process", "ratio", "goal"),
            )
            Table(warm_section(bench)).print(
                f"Warm requests ({args.warm_requests} per function, instant endpoint; "
                "goal: <= +3 ms p50 over the floor)",
                ("", "p50", "p95", "overhead", "goal"),
            )
            Table(powertools_section(bench)).print(
                "AWS Lambda Powertools Logger at cold start (import + Logger())", ("", "cost")
            )
            Table(import_profile_section(bench)).print(
                "Where chat's cold import goes (self time by top-level package)",
                ("package", "time", "share"),
            )
            if not args.skip_bytecode:
                Table(bytecode_section(bench)).print(
                    "If the artifacts shipped precompiled bytecode (they do not)",
                    ("", "init+1st", "ratio"),
                )
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
    print(f"\nreproduce: make bench (python -m tools.bench {' '.join(sys.argv[1:])})")


if __name__ == "__main__":
    main()
