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
from langchain_aws.chat_models.sagemaker_endpoint import (
    ChatModelContentHandler,
    ChatSagemakerEndpoint,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata

from llm_app.chat_template import SystemPromptPlacement, call_with_system_prompt_fallback
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.sagemaker_errors import sagemaker_errors_mapped


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
        self,
        model: BaseChatModel,
        endpoint_name: str,
        logger: Logger,
        *,
        enabled: bool = True,
        system_prompt: SystemPromptPlacement | None = None,
    ) -> None:
        self.model = model
        self.endpoint_name = endpoint_name
        self.logger = logger
        self.enabled = enabled
        self.system_prompt = system_prompt or SystemPromptPlacement()

    @classmethod
    def from_settings(cls, settings: Settings, logger: Logger) -> Endpoint:
        """The endpoint's client and chat model, built once per container."""
        model = build_chat_model(settings, build_sagemaker_client(settings))
        return cls(
            model,
            settings.endpoint_name,
            logger,
            enabled=settings.endpoint_enabled,
            system_prompt=SystemPromptPlacement(settings.system_prompt_placement),
        )

    def answer(self, messages: Sequence[BaseMessage]) -> str:
        if not self.enabled:
            raise paused_error(self.endpoint_name)
        started = time.perf_counter()
        try:
            return call_with_system_prompt_fallback(
                lambda prompt: _invoke_mapping_errors(
                    self.model, prompt, self.endpoint_name, self.logger
                ),
                messages,
                self.system_prompt,
            )
        finally:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            self.logger.append_keys(model_ms=elapsed_ms)


def paused_error(endpoint_name: str) -> AppError:
    """What a caller gets while the deployment has the endpoint paused: how to resume it."""
    return AppError(
        ErrorCode.MODEL_PAUSED,
        f"The model endpoint '{endpoint_name}' is paused (endpoint_enabled = false), so no "
        "instance is running or billed. To resume, set endpoint_enabled = true and run "
        "terraform apply; the endpoint takes several minutes to come back.",
    )


def _invoke_mapping_errors(
    model: BaseChatModel, messages: list[BaseMessage], endpoint_name: str, logger: Logger
) -> str:
    """One model call, with SageMaker and network failures turned into AppErrors."""
    with sagemaker_errors_mapped(endpoint_name, logger):
        return model.invoke(messages).text.strip()


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
