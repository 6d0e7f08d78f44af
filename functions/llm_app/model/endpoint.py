"""The model behind the SageMaker endpoint, through the Messages API TGI and vLLM both serve.

Why the Messages API: the container applies the model's own chat template, so any chat model
works without a prompt format of ours, and the answer never echoes the prompt.

`Endpoint.generate(messages, stream=...)` is the one way to call the model. It returns the
call's items (llm_app.model.answer): `Text` pieces, then one `Finish`.
- buffered (`stream=False`, or the buffered door): one `InvokeEndpoint` with
  `"stream": false`; the whole answer as one piece;
- streamed: `InvokeEndpointWithResponseStream` with `"stream": true` through
  `ChatSagemakerEndpoint.stream()` (llm_app.model.messages_api parses its lines).

Either way the call is read up to its first piece of text before `generate` returns, so an
engine that refuses the request raises here, whether it answered an HTTP error or an error
event inside its 200 stream, with the same AppError (llm_app.model.engine_errors): the
budget policy (llm_app.model.budget) can shrink and retry before anything was sent. A
`ModelStreamError` later raises from the iteration, and so does a stream that ends before
the model said why it stopped. A chat template that refuses the system role gets the system
prompt folded into the first user message and one more try (llm_app.model.chat_template).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from langchain_aws.chat_models.sagemaker_endpoint import ChatSagemakerEndpoint
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import (
    FINISH_STOP,
    Finish,
    ModelItem,
    Prefetched,
    Text,
    Usage,
    close_iterator,
)
from llm_app.model.chat_template import SystemPromptPlacement, call_with_system_prompt_fallback
from llm_app.model.engine_errors import PromptTooLong
from llm_app.model.messages_api import STOP_KWARG, MessagesApiContentHandler
from llm_app.model.sagemaker_errors import sagemaker_errors_mapped
from llm_app.model.tokens import estimate_prompt_tokens
from llm_app.redaction import keep_library_logs_free_of_user_data
from llm_app.runtime import metrics
from llm_app.runtime.aws import aws_client

# langchain-aws logs every failed streamed call with its traceback on stderr; each one is
# already mapped to an AppError and logged once, structured, by llm_app.http.edge.
logging.getLogger("langchain_aws.chat_models.sagemaker_endpoint").setLevel(logging.CRITICAL)

# Asked of a streamed call: TGI (>= 2.4) and vLLM then report the call's usage in the stream.
STREAM_KWARGS: Mapping[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}


def build_sagemaker_client(settings: Settings) -> Any:
    """One client per container; explicit timeouts and bounded retries (SageMaker throttles)."""
    return aws_client(
        "sagemaker-runtime",
        settings,
        read_timeout=settings.read_timeout_seconds,
        max_attempts=settings.max_attempts,
        tcp_keepalive=True,
    )


def build_chat_model(settings: Settings, client: Any) -> ChatSagemakerEndpoint:
    keep_library_logs_free_of_user_data(log_prompts=settings.log_prompts)
    return ChatSagemakerEndpoint(
        endpoint_name=settings.endpoint_name,
        client=client,
        content_handler=MessagesApiContentHandler(quote_replies=settings.log_prompts),
        model_kwargs=settings.generation_kwargs,
    )


class Endpoint:
    """The model behind the SageMaker endpoint: call it, map its errors, time it.

    Each call's latency joins the request's log line as ``model_ms`` (and ``first_token_ms``
    streamed) and its metrics (`metrics.model_call`, `metrics.first_token`), by name.
    """

    def __init__(
        self,
        model: BaseChatModel,
        endpoint_name: str,
        logger: Logger,
        *,
        enabled: bool = True,
        streaming: bool = False,
        system_prompt: SystemPromptPlacement | None = None,
        log_prompts: bool = False,
    ) -> None:
        self.model = model
        self.endpoint_name = endpoint_name
        self.logger = logger
        self.enabled = enabled
        # False in the buffered door: a streamed answer is then read whole (InvokeEndpoint) and
        # rendered in the stream's format, delivered at once (Settings.streams_model_calls).
        self.streaming = streaming
        self.system_prompt = system_prompt or SystemPromptPlacement()
        # SageMaker's and the container's own sentences reach the log only with log_prompts.
        self.log_prompts = log_prompts

    @classmethod
    def from_settings(cls, settings: Settings, logger: Logger) -> Endpoint:
        """The endpoint's client and chat model, built once per container."""
        model = build_chat_model(settings, build_sagemaker_client(settings))
        return cls(
            model,
            settings.endpoint_name,
            logger,
            enabled=settings.endpoint_enabled,
            streaming=settings.streams_model_calls,
            system_prompt=SystemPromptPlacement(settings.system_prompt_placement),
            log_prompts=settings.log_prompts,
        )

    def generate(
        self,
        messages: Sequence[BaseMessage],
        *,
        stream: bool = False,
        generation: Mapping[str, Any] | None = None,
    ) -> Iterator[ModelItem]:
        """One model call, read up to its first piece. `stream`: the request asked for a
        stream (the call streams behind the adapter; a timeout's advice says no more).
        `generation`: this call's sampling parameters over the settings' (None: left out)."""
        kwargs = {STOP_KWARG if k == "stop" else k: v for k, v in (generation or {}).items()}
        if not self.enabled:
            raise paused_error(self.endpoint_name)

        def call(sent: list[BaseMessage]) -> Iterator[ModelItem]:
            started = time.perf_counter()
            if stream and self.streaming:
                chunks = self._stream(sent, started, kwargs)
                prefetched = Prefetched(chunks)
                self._log_ms("first_token_ms", started)
                metrics.first_token(_ms_since(started))
                return prefetched
            return Prefetched(self._invoke(sent, started, kwargs, streamed=stream))

        try:
            return call_with_system_prompt_fallback(call, messages, self.system_prompt)
        except PromptTooLong as refused:
            raise refused.sent(estimate_prompt_tokens(messages)) from refused

    def _mapped(self, *, streamed: bool) -> Any:
        return sagemaker_errors_mapped(
            self.endpoint_name, self.logger, log_prompts=self.log_prompts, streamed=streamed
        )

    def _invoke(
        self,
        messages: list[BaseMessage],
        started: float,
        kwargs: Mapping[str, Any],
        *,
        streamed: bool,
    ) -> Iterator[ModelItem]:
        try:
            with self._mapped(streamed=streamed):
                message = self.model.invoke(list(messages), **kwargs)
        finally:
            self._log_ms("model_ms", started)
        finish = Finish(
            message.response_metadata.get("finish_reason") or FINISH_STOP,
            _as_usage(getattr(message, "usage_metadata", None)),
        )
        _count_call(started, finish.finish_reason, finish.usage)
        text = message.text.strip()
        return iter((Text(text), finish) if text else (finish,))

    def _stream(
        self, messages: list[BaseMessage], started: float, kwargs: Mapping[str, Any]
    ) -> Iterator[ModelItem]:
        """The streamed call's pieces (the answer's leading whitespace dropped), then its
        Finish; a stream that ends before the model said why it stopped raises."""
        chunks = self.model.stream(messages, **{**kwargs, **STREAM_KWARGS})
        reason: str | None = None
        usage = Usage()
        began = False
        try:
            with self._mapped(streamed=True):
                for chunk in chunks:
                    reason = chunk.response_metadata.get("finish_reason") or reason
                    usage = usage + _as_usage(getattr(chunk, "usage_metadata", None))
                    text = chunk.text if began else chunk.text.lstrip()
                    if text:
                        began = True
                        yield Text(text)
        finally:
            close_iterator(chunks)  # a client gone: the endpoint's stream too
            self._log_ms("model_ms", started)
            _count_call(started, reason, usage)
        if reason is None:
            raise AppError(
                ErrorCode.BAD_MODEL_OUTPUT,
                f"The SageMaker endpoint '{self.endpoint_name}' ended its stream before "
                "the model finished its answer.",
            )
        yield Finish(reason, usage)

    def _log_ms(self, key: str, started: float) -> None:
        self.logger.append_keys(**{key: _ms_since(started)})


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _count_call(started: float, finish_reason: str | None, usage: Usage) -> None:
    """The call's latency, tokens and finish reason, as the request's metrics."""
    metrics.model_call(
        _ms_since(started),
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        finish_reason=finish_reason,
    )


def paused_error(endpoint_name: str) -> AppError:
    """What a caller gets while the deployment has the endpoint paused: how to resume it."""
    return AppError(
        ErrorCode.MODEL_PAUSED,
        f"The model endpoint '{endpoint_name}' is paused (endpoint_enabled = false), so no "
        "instance is running or billed. To resume, set endpoint_enabled = true and run "
        "terraform apply; the endpoint takes several minutes to come back.",
    )


def _as_usage(metadata: object) -> Usage:
    if not isinstance(metadata, Mapping):
        return Usage()
    return Usage(int(metadata.get("input_tokens", 0)), int(metadata.get("output_tokens", 0)))
