"""Request metrics as CloudWatch embedded metric format (EMF) log lines, via Powertools Metrics.

CloudWatch turns each line into metrics without an API call (no PutMetricData, no grant). One
namespace per deployment (POWERTOOLS_METRICS_NAMESPACE, set by Terraform) and few dimensions,
so the metric count stays small: `service` (chat or qa) on every metric, `status_class` on
Requests, `error_code` on Errors. A request adds to its set as it goes (model calls, history,
QA chunks); `request_finished`, called when the answer ends (a streamed one after its last
chunk), writes the lines:
- one line with everything measured during the request, dimension `service`;
- one `Requests` line, dimensions `service` and `status_class` (2xx, 4xx, 5xx);
- on failure, one `Errors` line, dimensions `service` and `error_code` (the JSON error's code).

The functions answer every exception as a JSON 5xx (or, mid-stream, as the stream's last
event), so Lambda's own `Errors` metric stays at 0:
Requests by status class and Errors by code are how failures show (docs/operations.md).
"""

from __future__ import annotations

import os
import threading

from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
# Outside Terraform's environment (tests, make local) the lines still validate.
DEFAULT_NAMESPACE = "LLMApp"
NAMESPACE = os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
# chat or qa (Terraform sets it; the Logger reads it too).
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "llm_app"

_metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# QA's map step calls the model from several threads at once.
_lock = threading.Lock()
# Module state survives between requests of a container, and a SnapStart snapshot is taken
# before any request: the first request of each container or restored copy sees True.
_cold_start = True


def model_call(
    latency_ms: float,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    finish_reason: str | None,
) -> None:
    """One call to the endpoint: its latency, its tokens, and whether max_new_tokens cut it."""
    with _lock:
        _metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
        _metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if input_tokens is not None:
            _metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=input_tokens)
        if output_tokens is not None:
            _metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=output_tokens)
        # 0 or 1 per call, so Average is the share of calls cut at max_new_tokens.
        cut = 1 if finish_reason == "length" else 0
        _metrics.add_metric(name="CutAnswers", unit=MetricUnit.Count, value=cut)


def first_token(latency_ms: float) -> None:
    """A streamed model call's first token arrived, `latency_ms` after the call began (only
    behind the Lambda Web Adapter: the buffered door reads every answer whole)."""
    with _lock:
        _metrics.add_metric(
            name="FirstTokenLatency", unit=MetricUnit.Milliseconds, value=latency_ms
        )


def history_turns(turns: int) -> None:
    """Chat: how many earlier turns of the session went into the prompt."""
    with _lock:
        _metrics.add_metric(name="HistoryTurns", unit=MetricUnit.Count, value=turns)


def qa_chain(*, chunks: int) -> None:
    """QA: how many chunks the documents split into (each one model call at most)."""
    with _lock:
        _metrics.add_metric(name="QaChunks", unit=MetricUnit.Count, value=chunks)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def request_finished(status: int, error_code: str | None, duration_ms: float) -> None:
    """Write the request's EMF lines to stdout (the function's log) and start a new set."""
    global _cold_start  # noqa: PLW0603 - per container, as the cold start is
    with _lock:
        _metrics.add_metric(name="RequestLatency", unit=MetricUnit.Milliseconds, value=duration_ms)
        _metrics.add_metric(name="ColdStarts", unit=MetricUnit.Count, value=int(_cold_start))
        _cold_start = False
        _metrics.flush_metrics()
        with single_metric(
            name="Requests",
            unit=MetricUnit.Count,
            value=1,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE, "status_class": status_class(status)},
        ):
            pass
        if error_code is not None:
            with single_metric(
                name="Errors",
                unit=MetricUnit.Count,
                value=1,
                namespace=NAMESPACE,
                default_dimensions={"service": SERVICE, "error_code": error_code},
            ):
                pass
