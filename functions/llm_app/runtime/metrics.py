"""Request metrics as CloudWatch embedded metric format (EMF) log lines, via Powertools Metrics.

CloudWatch turns each line into metrics without an API call (no PutMetricData, no grant). One
namespace per deployment (POWERTOOLS_METRICS_NAMESPACE, set by Terraform and read by
llm_app.config like every setting; `start(settings)` at init) and few dimensions,
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

import threading

from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

from llm_app.config import Settings

# Counts an answer's facts name (llm_app.model.answer.Facts.metrics), emitted as they are.
HISTORY_TURNS = "HistoryTurns"  # chat: earlier turns of the session that went into the prompt
QA_CHUNKS = "QaChunks"  # QA: chunks the documents split into (each one model call at most)

# Outside Terraform's environment (tests, make local) the lines still validate.
_metrics = Metrics(namespace=Settings.powertools_metrics_namespace, service="llm_app")
NAMESPACE = Settings.powertools_metrics_namespace
SERVICE = "llm_app"
# QA's map step calls the model from several threads at once.
_lock = threading.Lock()
# Module state survives between requests of a container, and a SnapStart snapshot is taken
# before any request: the first request of each container or restored copy sees True.
_cold_start = True


def start(settings: Settings) -> None:
    """At init: the deployment's namespace and the function's service (chat or qa)."""
    global _metrics, NAMESPACE, SERVICE  # noqa: PLW0603 - once per container, at init
    with _lock:
        NAMESPACE = settings.powertools_metrics_namespace
        SERVICE = settings.powertools_service_name
        _metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


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


def count(name: str, value: float) -> None:
    """One of an answer's counts, by its metric's name (HISTORY_TURNS, QA_CHUNKS)."""
    with _lock:
        _metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, dimension: str, value: str) -> None:
    """One event counted under a dimension of few values (a sign-in refusal's reason): its own
    line, now, so a request's other metrics keep their dimensions."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE, dimension: value},
    ):
        pass


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
