"""What the functions' metrics and tracing cost: cold imports, each request, the layer.

- metrics: importing Powertools Metrics and `llm_app.runtime.metrics` after the app's other imports
  (what they add to a cold start), and writing one request's EMF lines (what they add to each);
- tracing off: proof that the X-Ray SDK is never imported (so it costs nothing), from a real
  request through the packaged chat function;
- tracing on: importing the X-Ray SDK and patching botocore, after the app's imports;
- layer: what aws-xray-sdk and wrapt add to layer.zip.

Medians of `runs` fresh interpreters each (tools/lambda_sandbox); printed, never asserted.
"""

from __future__ import annotations

import statistics
import zipfile
from collections.abc import Mapping
from pathlib import Path

from tools.lambda_sandbox import artifacts as sandbox

TITLE = "Metrics (EMF) and tracing (X-Ray): cold-start, per-request and layer cost"
HEADER = ("", "cost")
# The app's imports before the measured ones: the marginal cost is what a cold start pays.
APP_IMPORTS = """
import boto3
from aws_lambda_powertools import Logger
from langchain_aws.chat_models.sagemaker_endpoint import ChatSagemakerEndpoint
from langchain_core.prompts import ChatPromptTemplate
"""
METRICS_IMPORT = """
from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric
import llm_app.runtime.metrics
"""
EMF_REQUESTS = 1000
EMF_LINES = f"""
import contextlib, io
from llm_app.runtime import metrics
with contextlib.redirect_stdout(io.StringIO()):
    for _ in range({EMF_REQUESTS}):
        metrics.model_call(120.0, input_tokens=40, output_tokens=8, finish_reason="stop")
        metrics.request_finished(200, None, 130.0)
"""
TRACING_ON = """
from aws_xray_sdk.core import patch, xray_recorder
xray_recorder.configure(streaming_threshold=0, context_missing="LOG_ERROR")
patch(["botocore"])
"""
TRACING_PACKAGES = ("python/aws_xray_sdk", "python/wrapt")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _median_steps(
    sys_path: list[Path], env: Mapping[str, str], steps: list[tuple[str, str]], runs: int
) -> dict[str, float]:
    """Each step's median seconds over `runs` fresh interpreters, after the app's imports."""
    timed = [
        sandbox.run_isolated(sys_path, env, steps=[("app", APP_IMPORTS), *steps]).steps
        for _ in range(runs)
    ]
    return {name: statistics.median(t[name] for t in timed) for name, _ in steps}


def layer_bytes(layer_zip: Path, prefixes: tuple[str, ...] = TRACING_PACKAGES) -> tuple[int, int]:
    """Zipped and unzipped bytes of the layer's entries under `prefixes` (dist-info included)."""
    with zipfile.ZipFile(layer_zip) as archive:
        entries = [i for i in archive.infolist() if i.filename.startswith(prefixes)]
    return sum(i.compress_size for i in entries), sum(i.file_size for i in entries)


def section(
    unpacked: sandbox.Unpacked, env: Mapping[str, str], runs: int, build_dir: Path
) -> list[tuple[str, ...]]:
    chat_path = unpacked.sys_path("chat")
    metrics = _median_steps(chat_path, env, [("import", METRICS_IMPORT), ("emf", EMF_LINES)], runs)
    # As in Lambda: with LAMBDA_TASK_ROOT set the SDK samples locally; elsewhere it would build
    # an X-Ray client for central sampling, whose botocore model the layer leaves out.
    lambda_env = {**env, "LAMBDA_TASK_ROOT": str(unpacked.task("chat"))}
    tracing = _median_steps(chat_path, lambda_env, [("import", TRACING_ON)], runs)

    untraced = sandbox.run_isolated(
        chat_path,
        {**env, "TRACING_ENABLED": "false"},
        handler=sandbox.HANDLERS["chat"],
        events=[sandbox.function_url_event()],
    )
    loaded = [m for m in untraced.loaded_modules if m.startswith(("aws_xray_sdk", "wrapt"))]
    if loaded:
        raise RuntimeError(f"tracing is off, yet these were imported: {loaded}")
    zipped, unzipped = layer_bytes(build_dir / "layer.zip")
    return [
        ("metrics: Powertools Metrics + llm_app.runtime.metrics, cold", _ms(metrics["import"])),
        ("metrics: one request's EMF lines, warm", f"{metrics['emf'] / EMF_REQUESTS * 1e6:.0f} us"),
        ("tracing off: X-Ray SDK imported", "never (0 ms)"),
        ("tracing on: X-Ray SDK import + botocore patch, cold", _ms(tracing["import"])),
        (
            "layer: aws-xray-sdk + wrapt",
            f"+{zipped / 2**20:.2f} MiB zipped, +{unzipped / 2**20:.2f} MiB unzipped",
        ),
    ]
