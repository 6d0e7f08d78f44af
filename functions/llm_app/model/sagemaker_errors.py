"""What the SageMaker runtime answers on failure, as errors a caller may see (the container's own
errors, relayed in a ModelError, map through llm_app.model.engine_errors).

SageMaker's documented InvokeEndpoint errors (docs/api.md has the table):

- ``ModelError`` (HTTP 424): the container answered 4xx/5xx; ``OriginalStatusCode`` and
  ``OriginalMessage`` carry its status and body, ``LogStreamArn`` its log. Status **0** is
  SageMaker's own 60-second limit: "Your invocation timed out while waiting for a response
  from container primary".
- ``ValidationError`` (400): a bad request, or "Endpoint ... of account ... not found".
- ``ThrottlingException``, ``ModelNotReadyException``, ``ServiceUnavailable``,
  ``InternalFailure``, ``InternalDependencyException``: transient, retry later.
- ``AccessDeniedException`` (and any other code): the function's own setup is wrong.
- Streamed calls (InvokeEndpointWithResponseStream) fail the same ways before the first
  piece; after it, the stream ends with a ``ModelStreamError`` event (the container broke:
  ``StreamBroken``, ``ModelInvocationTimeExceeded``) or ``InternalStreamFailure`` (transient).

A caller never sees an ARN, an account id or a raw AWS message: the answers below are our own
sentences, plus the container's sentence for its 4xx (TGI's and vLLM's validation messages,
with anything that looks like an ARN or account id removed). The full detail goes to the
function's log under the request's id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from llm_app.errors import AppError, ErrorCode
from llm_app.model.engine_errors import engine_error, safe

# Seconds a caller should wait before retrying, by SageMaker error code.
RETRY_AFTER_SECONDS: Mapping[str, int] = {
    "ThrottlingException": 5,
    "ModelNotReadyException": 30,
    "ServiceUnavailable": 10,
    "InternalFailure": 5,
    "InternalDependencyException": 5,
    # InvokeEndpointWithResponseStream: the runtime failed a stream after it began.
    "InternalStreamFailure": 5,
}
# SageMaker's OriginalStatusCode when the container did not answer within 60 seconds.
CONTAINER_TIMEOUT_STATUS = 0
SHORTER_ADVICE = "ask for a shorter answer (fewer new tokens, MAX_NEW_TOKENS)"
STREAM_ADVICE = (
    "or stream it (accept: text/event-stream), which SageMaker does not cut at 60 seconds"
)


def timeout_advice(*, streamed: bool) -> str:
    """What a caller can do about a timeout: a streamed request is not told to stream."""
    return SHORTER_ADVICE if streamed else f"{SHORTER_ADVICE} {STREAM_ADVICE}"


# SageMaker errors whose message relays the model container's own words.
CONTAINER_ERROR_CODES = frozenset({"ModelError", "ModelStreamError"})


def translate_client_error(
    error: ClientError, endpoint_name: str, *, streamed: bool = False
) -> AppError:
    """The AppError a caller sees for one SageMaker ClientError."""
    response: Mapping[str, Any] = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    if code == "ModelError":
        return _model_error(
            response.get("OriginalStatusCode"), response.get("OriginalMessage"), streamed
        )
    if code == "ModelStreamError":  # the container failed after the stream began
        # botocore keeps only its Message (its ErrorCode is dropped): for the log.
        return AppError(
            ErrorCode.MODEL_ERROR,
            "The model failed while streaming its answer; the function's log has the details "
            "under this request's id.",
        )
    if code == "ValidationError" and "not found" in message.lower():
        return AppError(
            ErrorCode.ENDPOINT_NOT_FOUND,
            f"The SageMaker endpoint '{endpoint_name}' was not found in this account and "
            "region: is it deployed, and is ENDPOINT_NAME right?",
        )
    if code in RETRY_AFTER_SECONDS:
        return AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"The SageMaker endpoint '{endpoint_name}' cannot take requests now ({code}); "
            "retry later.",
            retry_after=RETRY_AFTER_SECONDS[code],
        )
    if code == "AccessDeniedException":
        return AppError(
            ErrorCode.MODEL_ERROR,
            f"The function is not allowed to invoke the SageMaker endpoint '{endpoint_name}' "
            "(AccessDeniedException): check its role's sagemaker:InvokeEndpoint grant. The "
            "function's log has the details under this request's id.",
        )
    return AppError(
        ErrorCode.MODEL_ERROR,
        f"SageMaker refused the request to endpoint '{endpoint_name}' ({safe(code)}); the "
        "function's log has the details under this request's id.",
    )


def _model_error(status: object, message: object, streamed: bool) -> AppError:
    """The container answered an error (ModelError), or never answered (status 0)."""
    if status == CONTAINER_TIMEOUT_STATUS:
        return AppError(
            ErrorCode.MODEL_TIMEOUT,
            "The model did not finish within SageMaker's 60-second limit for one "
            f"invocation; {timeout_advice(streamed=streamed)}.",
        )
    return engine_error(status, message)


def translate_transport_error(
    error: Exception, endpoint_name: str, *, streamed: bool = False
) -> AppError | None:
    """The AppError for a network failure on the way to SageMaker, or None if it is not one."""
    if isinstance(error, ReadTimeoutError):
        return AppError(
            ErrorCode.MODEL_TIMEOUT,
            f"The SageMaker endpoint '{endpoint_name}' did not answer in time; "
            f"{timeout_advice(streamed=streamed)}.",
        )
    if isinstance(
        error,
        ConnectTimeoutError
        | EndpointConnectionError
        | ConnectionClosedError
        | ResponseStreamingError,
    ):
        return AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"Could not reach the SageMaker runtime for endpoint '{endpoint_name}'.",
            retry_after=5,
        )
    return None


def log_client_error(logger: Logger, error: ClientError, *, log_prompts: bool) -> None:
    """SageMaker's answer, for the function's log only (with the request id).

    The container's words (OriginalMessage, and SageMaker's message of a ModelError or
    ModelStreamError, which carries them) may quote the request: they join the line only
    with log_prompts (docs/security.md). SageMaker's own sentences, the codes, ids and the
    container's log stream always do.
    """
    response: Mapping[str, Any] = error.response
    code = response.get("Error", {}).get("Code")
    extra = {
        "aws_error_code": code,
        "aws_request_id": response.get("ResponseMetadata", {}).get("RequestId"),
        "original_status_code": response.get("OriginalStatusCode"),
        "log_stream_arn": response.get("LogStreamArn"),
    }
    if log_prompts or code not in CONTAINER_ERROR_CODES:
        extra["aws_error_message"] = response.get("Error", {}).get("Message")
    if log_prompts:
        extra["original_message"] = response.get("OriginalMessage")
    logger.warning("SageMaker error", extra=extra)


@contextmanager
def sagemaker_errors_mapped(
    endpoint_name: str, logger: Logger, *, log_prompts: bool = False, streamed: bool = False
) -> Iterator[None]:
    """Turn the SageMaker runtime's and the network's failures inside into AppErrors
    (`streamed`: the request asked for a stream, which a timeout's advice then leaves out)."""
    try:
        yield
    except ClientError as error:
        log_client_error(logger, error, log_prompts=log_prompts)
        raise translate_client_error(error, endpoint_name, streamed=streamed) from error
    except BotoCoreError as error:
        translated = translate_transport_error(error, endpoint_name, streamed=streamed)
        if translated is None:
            raise
        raise translated from error
