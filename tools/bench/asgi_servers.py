"""What each candidate ASGI server costs at cold start, beside the precompiled boto3 floor.

    python -m tools.bench.asgi_servers [--build-dir build] [--runs 9]

How the streaming front door's server was chosen (docs/performance.md): each candidate is
installed from PyPI into a folder of its own and compiled like the layer, then a fresh
`python3.12 -E -s` serves a bare ASGI app (no framework, or Starlette) on 127.0.0.1 and the time
from process start to the first 200 answer to `GET /` is taken, as the Lambda Web Adapter's
readiness check sees it. The floor is the same interpreter importing the layer's precompiled
boto3 and building the sagemaker-runtime client. Medians over alternating runs; printed,
never asserted. Needs PyPI (pip) and `make package`'s layer.zip.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.lambda_sandbox.artifacts import runtime_python
from tools.paths import REPO_ROOT

PLAIN_APP = """\
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ready"})
"""
STARLETTE_APP = """\
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def ready(request):
    return PlainTextResponse("ready")

app = Starlette(routes=[Route("/", ready)])
"""
UVICORN = """\
import sys, uvicorn
uvicorn.run("{module}:app", host="127.0.0.1", port=int(sys.argv[1]), http="h11",
            loop="asyncio", ws="none", lifespan="off", access_log=False, log_level="warning")
"""
HYPERCORN = """\
import asyncio, sys
from hypercorn.asyncio import serve
from hypercorn.config import Config
from {module} import app
config = Config()
config.bind = [f"127.0.0.1:{{sys.argv[1]}}"]
asyncio.run(serve(app, config))
"""
GRANIAN = """\
import sys
from granian import Granian
Granian("{module}:app", address="127.0.0.1", port=int(sys.argv[1]), interface="asgi",
        workers=1, websockets=False, log_enabled=False).serve()
"""
FLOOR = 'import boto3\nboto3.client("sagemaker-runtime", region_name="us-east-1")\n'


@dataclass(frozen=True)
class Candidate:
    name: str
    requirements: tuple[str, ...]
    server: str
    app: str


CANDIDATES = (
    Candidate("uvicorn, plain ASGI", ("uvicorn",), UVICORN, PLAIN_APP),
    Candidate("uvicorn + Starlette", ("uvicorn", "starlette"), UVICORN, STARLETTE_APP),
    Candidate("hypercorn, plain ASGI", ("hypercorn",), HYPERCORN, PLAIN_APP),
    Candidate("granian, plain ASGI", ("granian",), GRANIAN, PLAIN_APP),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install(candidate: Candidate, folder: Path) -> int:
    """pip-install the candidate's wheels for this interpreter; returns their size in bytes."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--target", str(folder), *candidate.requirements],
        check=True,
    )  # fmt: skip
    (folder / "bench_app.py").write_text(candidate.app, encoding="utf-8")
    (folder / "bench_server.py").write_text(
        candidate.server.format(module="bench_app"), encoding="utf-8"
    )
    compileall.compile_dir(folder, quiet=1, workers=0)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def serve_until_ready(python: str, folder: Path, timeout: float = 60) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, "-E", "-s", str(folder / "bench_server.py"), str(port)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if connection.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.002)
            if process.poll() is not None or time.perf_counter() - started > timeout:
                raise SystemExit(f"{folder.name}: the server did not start")
    finally:
        process.kill()
        process.wait()


def floor_seconds(python: str, layer: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [python, "-I", "-c", f"import sys; sys.path.insert(0, {str(layer)!r})\n{FLOOR}"],
        check=True,
    )
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    python = runtime_python()
    with tempfile.TemporaryDirectory(prefix="asgi-bench-") as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(args.build_dir / "layer.zip") as layer:
            layer.extractall(root / "opt")
        sizes = {}
        for index, candidate in enumerate(CANDIDATES):
            sizes[candidate.name] = install(candidate, root / f"candidate{index}")
        times: dict[str, list[float]] = {"floor: precompiled boto3 client": []}
        times |= {candidate.name: [] for candidate in CANDIDATES}
        for _ in range(args.runs):  # alternating, so drift hits every contestant alike
            times["floor: precompiled boto3 client"].append(
                floor_seconds(python, root / "opt" / "python")
            )
            for index, candidate in enumerate(CANDIDATES):
                times[candidate.name].append(serve_until_ready(python, root / f"candidate{index}"))
        shutil.rmtree(root / "opt")
    floor = statistics.median(times["floor: precompiled boto3 client"])
    print(f"\nprocess start to the first answer to GET / ({args.runs} runs, medians)")
    print(f"{'':34}{'median':>10}{'/ floor':>9}{'installed':>12}")
    for name, values in times.items():
        median = statistics.median(values)
        size = f"{sizes[name] / 2**20:.1f} MiB" if name in sizes else ""
        print(f"{name:34}{median * 1000:8.1f} ms{median / floor:8.2f}x{size:>12}")


if __name__ == "__main__":
    main()
