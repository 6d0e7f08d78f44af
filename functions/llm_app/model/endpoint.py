"""LangChain's SageMaker chat model bound to a TGI endpoint through TGI's Messages API.

Why the Messages API: the TGI container applies the model's own chat template, so any TGI chat
model works without a prompt format of ours, and the answer never echoes the prompt (on
SageMaker, TGI's generate route returns the prompt too unless `return_full_text` is false).

`Endpoint.generate(messages, stream=...)` is the one way to call the model; it returns a
`Generation` (llm_app.model.answer):
- buffered (`stream=False`): one `InvokeEndpoint` with `"stream": false`; the whole answer as
  one piece, with the completion's `finish_reason` and `usage`;
- streamed (`stream=True`): `InvokeEndpointWithResponseStream` with `"stream": true` through
  `ChatSagemakerEndpoint.stream()`, which splits the PayloadParts into lines (a line may span
  parts) and hands each to `TgiMessagesContentHandler.transform_output`: TGI's and vLLM's SSE
  lines, `data: {chat.completion.chunk}` then `data: [DONE]`. The call reads up to the first
  piece of text before it returns, so an endpoint that refuses the request raises here with
  the same AppError as a buffered call. A `ModelStreamError` later raises AppError from the
  iteration, and so does a stream that ends before the model said why it stopped.

Errors map through `llm_app.model.engine_errors` (no ARN, account id or raw AWS message reaches a
caller). A chat template that refuses the system role (an error before the first piece,
streamed or not) gets the system prompt folded into the first user message and one more try
(`llm_app.model.chat_template`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from langchain_aws.chat_models.sagemaker_endpoint import (
    ChatModelContentHandler,
    ChatSagemakerEndpoint,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import Generation, Usage, close_iterator
from llm_app.model.chat_template import SystemPromptPlacement, call_with_system_prompt_fallback
from llm_app.model.engine_errors import safe_container_message, sagemaker_errors_mapped
from llm_app.redaction import keep_library_logs_free_of_user_data
from llm_app.runtime import metrics
from llm_app.runtime.aws import aws_client

# langchain-aws logs every failed streamed call with its traceback on stderr; each one is
# already mapped to an AppError and logged once, structured, by llm_app.http.edge.
logging.getLogger("langchain_aws.chat_models.sagemaker_endpoint").setLevel(logging.CRITICAL)

# Asked of a streamed call: TGI (>= 2.4) and vLLM then report the call's usage in the stream.
STREAM_KWARGS: Mapping[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
_NO_USAGE = UsageMetadata(input_tokens=0, output_tokens=0, total_tokens=0)


class TgiMessagesContentHandler(ChatModelContentHandler):
    """Serialises LangChain messages as a TGI Messages API request and parses its reply.

    `transform_output` gets a buffered call's whole body (a file-like object), or one line of
    a streamed call's SSE (bytes; langchain-aws calls it once per line).
    """

    content_type = "application/json"
    accepts = "application/json"

    def __init__(self, *, quote_replies: bool = False) -> None:
        # The start of an unreadable reply joins the error only with log_prompts: it is
        # the model's output, user data like the answer.
        self.quote_replies = quote_replies

    def transform_input(self, prompt: list[dict[str, Any]], model_kwargs: dict[str, Any]) -> bytes:
        body = {"messages": prompt, **model_kwargs}
        body.setdefault("stream", False)
        return json.dumps(body).encode("utf-8")

    def transform_output(self, output: Any) -> AIMessage:
        if isinstance(output, bytes):
            return parse_stream_line(output, quote_replies=self.quote_replies)
        raw = output.read()
        try:
            completion = json.loads(raw)
            choice = completion["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, LookupError, TypeError) as error:
            raise AppError(
                ErrorCode.BAD_MODEL_OUTPUT,
                f"The endpoint's response is not a chat completion ({error})"
                f"{_quoted(raw, self.quote_replies)}",
            ) from None
        return AIMessage(
            content=content,
            usage_metadata=_usage(completion.get("usage")),
            response_metadata={"finish_reason": choice.get("finish_reason")},
        )


def parse_stream_line(line: bytes, *, quote_replies: bool = False) -> AIMessageChunk:
    """One SSE line of a streamed chat completion as a message chunk.

    Blank lines, comments, `event:`/`id:` fields and `data: [DONE]` carry no text: an empty
    chunk, which langchain-aws drops. The chunk that says why the model stopped keeps that
    reason in `response_metadata` and always carries usage (zero when the server sends it in
    a later chunk of its own), so that langchain-aws passes it on.
    """
    text = line.strip()
    if not text.startswith(b"data:"):
        return AIMessageChunk(content="")
    data = text[len(b"data:") :].strip()
    if data == b"[DONE]":
        return AIMessageChunk(content="")
    try:
        event = json.loads(data)
        if not isinstance(event, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError) as error:
        raise AppError(
            ErrorCode.BAD_MODEL_OUTPUT,
            f"The endpoint's stream holds a line that is not a chat completion chunk "
            f"({error}){_quoted(data, quote_replies)}",
        ) from None
    if "error" in event:  # TGI's and vLLM's in-stream error event
        message = safe_container_message(json.dumps(event)) or "no message"
        raise AppError(
            ErrorCode.MODEL_ERROR,
            f"The model failed while answering: {message}",
            log_message="The model failed while answering (the engine's error event).",
        )
    choices = event.get("choices") or []
    choice = choices[0] if isinstance(choices, list) and choices else {}
    delta = choice.get("delta") if isinstance(choice, dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    finish_reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    usage = _usage(event.get("usage"))
    if finish_reason is not None and usage is None:
        usage = _NO_USAGE
    return AIMessageChunk(
        content=content if isinstance(content, str) else "",
        usage_metadata=usage,
        response_metadata={"finish_reason": finish_reason} if finish_reason else {},
    )


def _quoted(reply: bytes, quote: bool) -> str:
    """The start of an unreadable reply, for its error: the model's output is user data, so
    it is quoted only with log_prompts."""
    return f": {reply[:200].decode('utf-8', errors='replace')!r}" if quote else ""


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
        content_handler=TgiMessagesContentHandler(quote_replies=settings.log_prompts),
        model_kwargs=settings.generation_kwargs,
    )


class Endpoint:
    """The model behind the SageMaker endpoint: call it, map its errors, time it.

    ``generate`` returns a `Generation` (see the module docstring); SageMaker and network
    failures raise AppErrors, before the first piece or from the iteration. The call's
    latency joins the request's log line as ``model_ms`` (and ``first_token_ms`` streamed).
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

    def generate(self, messages: Sequence[BaseMessage], *, stream: bool = False) -> Generation:
        if not self.enabled:
            raise paused_error(self.endpoint_name)
        call = self._stream if stream and self.streaming else self._invoke
        return call_with_system_prompt_fallback(call, messages, self.system_prompt)

    def _invoke(self, messages: list[BaseMessage]) -> Generation:
        started = time.perf_counter()
        try:
            with sagemaker_errors_mapped(
                self.endpoint_name, self.logger, log_prompts=self.log_prompts
            ):
                message = self.model.invoke(list(messages))
        finally:
            self._log_ms("model_ms", started)
        generation = Generation.complete(
            message.text.strip(),
            message.response_metadata.get("finish_reason"),
            _as_usage(getattr(message, "usage_metadata", None)),
        )
        _count_call(started, generation)
        return generation

    def _stream(self, messages: list[BaseMessage]) -> Generation:
        started = time.perf_counter()
        chunks = self.model.stream(messages, **STREAM_KWARGS)

        def pieces() -> Iterator[str]:
            try:
                with sagemaker_errors_mapped(
                    self.endpoint_name, self.logger, log_prompts=self.log_prompts
                ):
                    for chunk in chunks:
                        reason = chunk.response_metadata.get("finish_reason")
                        usage = _as_usage(getattr(chunk, "usage_metadata", None))
                        if reason is not None or usage != Usage():
                            generation.finish(reason, usage)
                        if chunk.text:
                            yield chunk.text
            finally:
                close_iterator(chunks)  # a client gone: the endpoint's stream too
                self._log_ms("model_ms", started)
                _count_call(started, generation)
            if generation.finish_reason is None:
                raise AppError(
                    ErrorCode.BAD_MODEL_OUTPUT,
                    f"The SageMaker endpoint '{self.endpoint_name}' ended its stream before "
                    "the model finished its answer.",
                )

        generation = Generation(pieces())
        # Read up to the first piece now: an endpoint that refuses the call raises here.
        generation.prefetch()
        self._log_ms("first_token_ms", started)
        metrics.first_token(round((time.perf_counter() - started) * 1000, 1))
        return generation

    def _log_ms(self, key: str, started: float) -> None:
        self.logger.append_keys(**{key: round((time.perf_counter() - started) * 1000, 1)})


def _count_call(started: float, generation: Generation) -> None:
    """The call's latency, tokens and finish reason, as the request's metrics."""
    metrics.model_call(
        round((time.perf_counter() - started) * 1000, 1),
        input_tokens=generation.usage.input_tokens,
        output_tokens=generation.usage.output_tokens,
        finish_reason=generation.finish_reason,
    )


def paused_error(endpoint_name: str) -> AppError:
    """What a caller gets while the deployment has the endpoint paused: how to resume it."""
    return AppError(
        ErrorCode.MODEL_PAUSED,
        f"The model endpoint '{endpoint_name}' is paused (endpoint_enabled = false), so no "
        "instance is running or billed. To resume, set endpoint_enabled = true and run "
        "terraform apply; the endpoint takes several minutes to come back.",
    )


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


def _as_usage(metadata: object) -> Usage:
    if not isinstance(metadata, Mapping):
        return Usage()
    return Usage(int(metadata.get("input_tokens", 0)), int(metadata.get("output_tokens", 0)))
