"""The Messages API (OpenAI's chat completions) as TGI and vLLM serve it, for LangChain.

`MessagesApiContentHandler` serialises LangChain messages as one request body and parses the
reply: a buffered call's whole chat completion, or one SSE line of a streamed call's
(`data: {chat.completion.chunk}` then `data: [DONE]`; langchain-aws splits the PayloadParts
into lines, a line may span parts). An engine's in-stream error event raises the same
AppError its HTTP error would (llm_app.model.engine_errors).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_aws.chat_models.sagemaker_endpoint import ChatModelContentHandler
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata

from llm_app.errors import AppError, ErrorCode
from llm_app.model.engine_errors import stream_error_event

_NO_USAGE = UsageMetadata(input_tokens=0, output_tokens=0, total_tokens=0)


# The Messages API's `stop` on its way through LangChain, whose invoke and stream keep `stop`
# for themselves (ChatSagemakerEndpoint then drops it): the handler writes it back as `stop`.
STOP_KWARG = "stop_sequences"


class MessagesApiContentHandler(ChatModelContentHandler):
    """Serialises LangChain messages as a Messages API request (TGI's or vLLM's) and parses
    its reply.

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
        # A request's kwargs over the model's: None leaves the model's value out.
        kwargs = {k: v for k, v in model_kwargs.items() if v is not None}
        if STOP_KWARG in kwargs:
            kwargs["stop"] = kwargs.pop(STOP_KWARG)
        body = {"messages": prompt, **kwargs}
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
    if (refusal := stream_error_event(event)) is not None:  # TGI's and vLLM's error event
        raise refusal
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
