"""X-Ray subsegments for the AWS calls, when the function's tracing is Active.

Terraform sets TRACING_ENABLED from `tracing_mode`. Off (the default), `start()` returns at
once and the X-Ray SDK is never imported: tracing costs nothing (tests/packaging proves the
module is absent). On, the SDK patches botocore, so each SageMaker runtime, DynamoDB and S3
call is a subsegment with its operation, status and retries, and each request is a `## request`
subsegment annotated with its `error_code` (`none` when it succeeded): a trace search such as
`annotation.error_code = "model_timeout"` finds the failed requests.
"""

from __future__ import annotations

import os
from typing import Any

from llm_app.config import Settings

REQUEST_SUBSEGMENT = "## request"
# Where Lambda's runtime puts the invocation's trace header, and the X-Ray SDK reads it.
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"
# The X-Ray SDK's recorder once tracing started; None while tracing is off.
_recorder: Any = None
# The subsegment of the request in progress.
_request: Any = None


def start(settings: Settings) -> None:
    """At init: patch botocore when tracing is on (before or after clients exist, either works:
    the patch is on botocore's client class)."""
    global _recorder  # noqa: PLW0603 - the container's one recorder, set once at init
    if not settings.tracing_enabled or _recorder is not None:
        return
    # Imported here only: with tracing off the SDK never loads (no cold-start cost).
    from aws_xray_sdk.core import (  # type: ignore[import-untyped]  # noqa: PLC0415
        patch,
        xray_recorder,
    )

    # Lambda owns the segment; each subsegment is sent as soon as it ends (threshold 0), so a
    # request that times out still shows the calls it made. A call outside a request (at
    # init) logs instead of raising.
    xray_recorder.configure(streaming_threshold=0, context_missing="LOG_ERROR")
    patch(["botocore"])
    _recorder = xray_recorder


def request_started(trace_header: str | None = None) -> None:
    """Open the request's subsegment.

    `trace_header`: the invocation's X-Ray header, for a front door whose process the Lambda
    runtime does not give `_X_AMZN_TRACE_ID` (an app behind the Lambda Web Adapter reads it
    from the `x-amzn-lambda-context` header's `xray_trace_id`). The SDK reads the variable on
    each call, and an execution environment serves one request at a time.
    """
    global _request  # noqa: PLW0603 - one request at a time per execution environment
    if _recorder is None:
        return
    if trace_header:
        os.environ[TRACE_HEADER_ENV] = trace_header
    _request = _recorder.begin_subsegment(REQUEST_SUBSEGMENT)


def request_finished(error_code: str | None) -> None:
    """Annotate the request's subsegment with its error code and send it."""
    global _request
    if _recorder is None or _request is None:
        return
    subsegment, _request = _request, None
    subsegment.put_annotation("error_code", error_code or "none")
    if _recorder.current_subsegment() is subsegment:
        _recorder.end_subsegment()
    else:
        # A streamed body ends on another thread than the one that began the request; the
        # SDK's context is per thread, so close and send the subsegment here.
        subsegment.close()
        _recorder.emitter.send_entity(subsegment)
