"""What the SageMaker runtime and the container answer on failure, as errors a caller may see.

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

import json
import re
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
# The network failed on the way to SageMaker, or a stream broke in transit.
_UNREACHABLE = (
    ConnectTimeoutError,
    EndpointConnectionError,
    ConnectionClosedError,
    ResponseStreamingError,
)
# SageMaker's OriginalStatusCode when the container did not answer within 60 seconds.
CONTAINER_TIMEOUT_STATUS = 0
TIMEOUT_ADVICE = (
    "ask for a shorter answer (fewer new tokens, MAX_NEW_TOKENS) or stream it "
    "(accept: text/event-stream), which SageMaker does not cut at 60 seconds"
)

# TGI (router/src/validation.rs): "`inputs` tokens + `max_new_tokens` must be <= 2048.
# Given: 2100 `inputs` tokens and 700 `max_new_tokens`", and "`inputs` must have less than
# 1348 tokens. Given: 1400".
_TGI_TOTAL = re.compile(
    r"`inputs` tokens \+ `max_new_tokens` must be <= (?P<limit>\d+)\. "
    r"Given: (?P<inputs>\d+) `inputs` tokens and (?P<new>\d+) `max_new_tokens`"
)
_TGI_INPUT = re.compile(
    r"`inputs` must have less than (?P<limit>\d+) tokens\. Given: (?P<inputs>\d+)"
)
# vLLM (its OpenAI server's length check), whose wording changed across releases:
# "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens
# (1400 in the messages, 700 in the completion)." / "... However, you requested 700 output
# tokens and your prompt contains at least 1401 input tokens, ..." / "... However, your
# request has 2100 input tokens." / "'max_tokens' or 'max_completion_tokens' is too large:
# 700. This model's maximum context length is 2048 tokens and your request has 1400 input
# tokens (700 > 2048 - 1400)."
_VLLM_LIMIT = re.compile(r"maximum context length is (?P<limit>\d+) tokens")
_VLLM_COUNTS = (
    re.compile(r"\((?P<inputs>\d+) in the messages, (?P<new>\d+) in the completion\)"),
    re.compile(
        r"requested (?P<new>\d+) output tokens and your prompt contains at least "
        r"(?P<inputs>\d+) input tokens"
    ),
    re.compile(r"too large: (?P<new>\d+)\..*your request has (?P<inputs>\d+) input tokens"),
    re.compile(r"your request has (?P<inputs>\d+) input tokens"),
)
# The part of the endpoint's measured ratio a retried prompt is budgeted at.
SHRINK_MARGIN = 0.9
# What must never reach a caller, should a container or AWS sentence carry it.
_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',]*")
_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


# SageMaker errors whose message relays the model container's own words.
CONTAINER_ERROR_CODES = frozenset({"ModelError", "ModelStreamError"})


class PromptTooLong(AppError):
    """The endpoint counted more input tokens than it accepts: 413, with its real figures.

    ``input_tokens`` is the container's own count of the prompt it refused and
    ``input_limit`` the most it would have taken with the same ``max_new_tokens``, so a
    caller of the model can shrink the prompt by their ratio and try again.
    """

    def __init__(self, input_tokens: int, input_limit: int) -> None:
        super().__init__(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The prompt is {input_tokens} tokens by the model's own count; it accepts "
            f"{input_limit} input tokens. Send fewer or shorter documents, a shorter "
            "question, or start a new chat session.",
        )
        self.input_tokens = input_tokens
        self.input_limit = input_limit
        # Our estimate of the refused prompt, set by the caller that sent it.
        self.sent_estimate: int | None = None

    def shrink(self, estimated_tokens: int) -> int:
        """A budget, in the estimate's units, for a prompt whose estimate was
        `estimated_tokens`: the endpoint's ratio of allowed to counted tokens, less 10%
        because the text that goes is not exactly as dense as the text that stays."""
        return int(estimated_tokens * self.input_limit / self.input_tokens * SHRINK_MARGIN)


class SystemRoleRefused(AppError):
    """The model's chat template has no system role (Gemma, Mistral-Instruct v0.1/v0.2)."""

    def __init__(self, container_message: str) -> None:
        super().__init__(
            ErrorCode.MODEL_ERROR,
            f"The model's chat template refused the system prompt: {container_message}",
            log_message="The model's chat template refused the system prompt.",
        )


def translate_client_error(error: ClientError, endpoint_name: str) -> AppError:
    """The AppError a caller sees for one SageMaker ClientError."""
    response: Mapping[str, Any] = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    if code == "ModelError":
        return _model_error(response.get("OriginalStatusCode"), response.get("OriginalMessage"))
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
        f"SageMaker refused the request to endpoint '{endpoint_name}' ({_safe(code)}); the "
        "function's log has the details under this request's id.",
    )


def translate_transport_error(error: Exception, endpoint_name: str) -> AppError | None:
    """The AppError for a network failure on the way to SageMaker, or None if it is not one."""
    if isinstance(error, ReadTimeoutError):
        return AppError(
            ErrorCode.MODEL_TIMEOUT,
            f"The SageMaker endpoint '{endpoint_name}' did not answer in time; {TIMEOUT_ADVICE}.",
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


def _model_error(original_status: object, original_message: object) -> AppError:
    container_message = _safe(_container_message(original_message) or "")
    if original_status == CONTAINER_TIMEOUT_STATUS:
        return AppError(
            ErrorCode.MODEL_TIMEOUT,
            "The model did not finish within SageMaker's 60-second limit for one "
            f"invocation; {TIMEOUT_ADVICE}.",
        )
    too_long = parse_prompt_too_long(container_message)
    if too_long is not None:
        return too_long
    if original_status in (400, 422) and refuses_system_role(original_message):
        return SystemRoleRefused(container_message)
    if original_status == 429:  # TGI's queue is full: transient, like throttling.
        return AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"The model is overloaded: {container_message}",
            retry_after=5,
            log_message="The model is overloaded (HTTP 429).",
        )
    return AppError(
        ErrorCode.MODEL_ERROR,
        f"The model rejected the request (HTTP {original_status}): {container_message}",
        # The container's sentence may quote the request: the caller sees it, the log does not.
        log_message=f"The model rejected the request (HTTP {original_status}).",
    )


def parse_prompt_too_long(message: str) -> PromptTooLong | None:
    """TGI's 422 or vLLM's 400 for a prompt over the context, with the counts they give."""
    if match := _TGI_TOTAL.search(message):
        inputs, limit, new = int(match["inputs"]), int(match["limit"]), int(match["new"])
        return PromptTooLong(inputs, limit - new)
    if match := _TGI_INPUT.search(message):
        return PromptTooLong(int(match["inputs"]), int(match["limit"]) - 1)
    if limit_match := _VLLM_LIMIT.search(message):
        limit = int(limit_match["limit"])
        for pattern in _VLLM_COUNTS:
            if match := pattern.search(message):
                new = int(match["new"]) if "new" in match.groupdict() else 0
                return PromptTooLong(int(match["inputs"]), limit - new)
    return None


def refuses_system_role(original_message: object) -> bool:
    """The container's chat template refused a system message.

    TGI answers 422 ``{"error_type": "template_error"}``; vLLM a 400 whose message is the
    template's own ("System role not supported", "Conversation roles must alternate ...").
    """
    if not isinstance(original_message, str):
        return False
    lowered = original_message.lower()
    try:
        parsed = json.loads(original_message)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error_type") == "template_error":
        return True
    return "system role" in lowered or ("roles must alternate" in lowered)


def safe_container_message(original: object) -> str | None:
    """The container's sentence from its error body (an in-stream error event's too), without
    ARNs or account ids."""
    message = _container_message(original)
    return None if message is None else _safe(message)


def _container_message(original: object) -> str | None:
    """The container's own sentence from its error body.

    TGI answers {"error": "...", "error_type": "..."}; vLLM's OpenAI server answers
    {"error": {"message": "...", "type": "...", "code": 400}}.
    """
    if not isinstance(original, str) or not original:
        return None
    try:
        parsed = json.loads(original)
    except ValueError:
        return original
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) else original


def _safe(text: str) -> str:
    """`text` without ARNs or account ids."""
    return _ACCOUNT_ID.sub("<account>", _ARN.sub("<arn>", text))


@contextmanager
def sagemaker_errors_mapped(
    endpoint_name: str, logger: Logger, *, log_prompts: bool = False
) -> Iterator[None]:
    """Turn the SageMaker runtime's and the network's failures inside into AppErrors."""
    try:
        yield
    except ClientError as error:
        log_client_error(logger, error, log_prompts=log_prompts)
        raise translate_client_error(error, endpoint_name) from error
    except BotoCoreError as error:
        translated = translate_transport_error(error, endpoint_name)
        if translated is None:
            raise
        raise translated from error
