"""LangChain's SageMaker chat model bound to a TGI endpoint through TGI's Messages API.

Why the Messages API: the TGI container applies the model's own chat template, so any TGI chat
model works without a prompt format of ours, and the answer never echoes the prompt (on
SageMaker, TGI's generate route returns the prompt too unless `return_full_text` is false).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from langchain_aws.chat_models.sagemaker_endpoint import (
    ChatModelContentHandler,
    ChatSagemakerEndpoint,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata

from llm_app import metrics
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode

# Seconds a caller should wait before retrying, by SageMaker error code.
_RETRY_AFTER_SECONDS: Mapping[str, int] = {
    "ThrottlingException": 5,
    "ModelNotReadyException": 30,
    "ServiceUnavailable": 10,
    "InternalFailure": 5,
    "InternalDependencyException": 5,
}


class TgiMessagesContentHandler(ChatModelContentHandler):
    """Serialises LangChain messages as a TGI Messages API request and parses its reply."""

    content_type = "application/json"
    accepts = "application/json"

    def transform_input(self, prompt: list[dict[str, Any]], model_kwargs: dict[str, Any]) -> bytes:
        return json.dumps({"messages": prompt, **model_kwargs, "stream": False}).encode("utf-8")

    def transform_output(self, output: Any) -> AIMessage:
        raw = output.read()
        try:
            completion = json.loads(raw)
            choice = completion["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, LookupError, TypeError) as error:
            excerpt = raw[:200].decode("utf-8", errors="replace")
            raise AppError(
                ErrorCode.BAD_MODEL_OUTPUT,
                f"The endpoint's response is not a chat completion ({error}): {excerpt!r}",
            ) from None
        return AIMessage(
            content=content,
            usage_metadata=_usage(completion.get("usage")),
            response_metadata={"finish_reason": choice.get("finish_reason")},
        )


def build_sagemaker_client(settings: Settings) -> Any:
    """One client per container; explicit timeouts and bounded retries (SageMaker throttles)."""
    return boto3.client(
        "sagemaker-runtime",
        config=Config(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
            tcp_keepalive=True,
        ),
    )


def build_chat_model(settings: Settings, client: Any) -> ChatSagemakerEndpoint:
    return ChatSagemakerEndpoint(
        endpoint_name=settings.endpoint_name,
        client=client,
        content_handler=TgiMessagesContentHandler(),
        model_kwargs=settings.generation_kwargs,
    )


class Endpoint:
    """The model behind the SageMaker endpoint: call it, map its errors, time it.

    ``answer`` returns the reply's text; SageMaker and network failures raise AppErrors; the
    call's latency joins the request's log line as ``model_ms``.
    """

    def __init__(
        self, model: BaseChatModel, endpoint_name: str, logger: Logger, *, enabled: bool = True
    ) -> None:
        self.model = model
        self.endpoint_name = endpoint_name
        self.logger = logger
        self.enabled = enabled

    @classmethod
    def from_settings(cls, settings: Settings, logger: Logger) -> Endpoint:
        """The endpoint's client and chat model, built once per container."""
        model = build_chat_model(settings, build_sagemaker_client(settings))
        return cls(model, settings.endpoint_name, logger, enabled=settings.endpoint_enabled)

    def answer(self, messages: Sequence[BaseMessage]) -> str:
        if not self.enabled:
            raise paused_error(self.endpoint_name)
        started = time.perf_counter()
        try:
            reply = _invoke_mapping_errors(self.model, list(messages), self.endpoint_name)
        finally:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            self.logger.append_keys(model_ms=elapsed_ms)
        usage = reply.usage_metadata
        metrics.model_call(
            elapsed_ms,
            input_tokens=usage["input_tokens"] if usage else None,
            output_tokens=usage["output_tokens"] if usage else None,
            finish_reason=reply.response_metadata.get("finish_reason"),
        )
        return reply.text.strip()


def paused_error(endpoint_name: str) -> AppError:
    """What a caller gets while the deployment has the endpoint paused: how to resume it."""
    return AppError(
        ErrorCode.MODEL_PAUSED,
        f"The model endpoint '{endpoint_name}' is paused (endpoint_enabled = false), so no "
        "instance is running or billed. To resume, set endpoint_enabled = true and run "
        "terraform apply; the endpoint takes several minutes to come back.",
    )


def _invoke_mapping_errors(
    model: BaseChatModel, messages: list[BaseMessage], endpoint_name: str
) -> AIMessage:
    """One model call, with SageMaker and network failures turned into AppErrors."""
    try:
        reply = model.invoke(messages)
        if not isinstance(reply, AIMessage):  # a chat model always answers an AIMessage
            raise TypeError(f"the chat model answered a {type(reply).__name__}")
        return reply
    except ClientError as error:
        raise translate_client_error(error, endpoint_name) from error
    except ReadTimeoutError as error:
        raise AppError(
            ErrorCode.MODEL_TIMEOUT,
            f"The SageMaker endpoint '{endpoint_name}' did not answer in time; "
            "ask for fewer tokens (MAX_NEW_TOKENS) or retry.",
        ) from error
    except (ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError) as error:
        raise AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"Could not reach the SageMaker runtime for endpoint '{endpoint_name}'.",
            retry_after=5,
        ) from error


def translate_client_error(error: ClientError, endpoint_name: str) -> AppError:
    response: Mapping[str, Any] = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", ""))
    if code == "ModelError":
        original_status = response.get("OriginalStatusCode")
        model_message = _container_message(response.get("OriginalMessage")) or message
        if original_status == 429:  # TGI's queue is full: transient, like throttling.
            return AppError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"The model is overloaded: {model_message}",
                retry_after=5,
            )
        return AppError(
            ErrorCode.MODEL_ERROR,
            f"The model rejected the request (HTTP {original_status}): {model_message}",
        )
    if code == "ValidationError" and "not found" in message.lower():
        return AppError(
            ErrorCode.ENDPOINT_NOT_FOUND,
            f"The SageMaker endpoint '{endpoint_name}' was not found in this account and "
            "region: is it deployed, and is ENDPOINT_NAME right?",
        )
    if code in _RETRY_AFTER_SECONDS:
        return AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"The SageMaker endpoint '{endpoint_name}' cannot take requests now ({code}): "
            f"{message}",
            retry_after=_RETRY_AFTER_SECONDS[code],
        )
    return AppError(
        ErrorCode.MODEL_ERROR,
        f"SageMaker refused the request to endpoint '{endpoint_name}' ({code}): {message}",
    )


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


def _usage(usage: object) -> UsageMetadata | None:
    if not isinstance(usage, Mapping):
        return None
    try:
        prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        return None
    return UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )
