"""vLLM's OpenAI server on SageMaker's route (``POST /invocations``), for the Messages API.

What AWS's vLLM DLC (SageMaker tag) answers, as vLLM's OpenAI-compatible server defines it
(``vllm/entrypoints/openai``): ``/invocations`` takes the body of the route it matches, here a
chat completion request (``{"messages": [...]}``); the answer is a ``chat.completion`` with
``finish_reason`` "stop" or "length" and a ``usage`` block. Errors are vLLM's
``ErrorResponse``: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status
as ``code`` (400 ``BadRequestError`` for a bad request). vLLM has one limit, the model
length (``--max-model-len``, SM_VLLM_MAX_MODEL_LEN): prompt plus ``max_tokens`` must fit in
it, and a missing ``max_tokens`` means "the rest of it".

With ``"stream": true`` the answer is Server-Sent Events as vLLM's ``serving_chat`` writes
them (pydantic's ``exclude_unset``): a first ``chat.completion.chunk`` whose delta is
``{"role":"assistant","content":""}``, one per piece of text (``{"content":"..."}``), one with
the ``finish_reason`` and ``stop_reason``; with ``stream_options.include_usage`` a last chunk
with ``"choices":[]`` and the ``usage``; then ``data: [DONE]``. A stop string is left out of
the stream as of the answer: the last characters that could begin one are held back until
the text goes past them (vLLM's stop buffer). An error during generation is one
``data: {"error": {"message", "type", "param", "code"}}`` event (json.dumps' spacing), then
``data: [DONE]``. The length check comes before the stream, so a streamed request that is too
long gets the HTTP 400 too; vLLM has no bound on concurrent requests (its scheduler queues
them) and aborts a request whose client has gone.

Requests this server cannot honour (tools, log-probabilities, n > 1, other routes' bodies)
are refused with a 400 that says so, never silently ignored. Standard library only.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tools.model_server import chat_stream
from tools.model_server.backend import Backend, ChatTemplateError, GenerateParams, Generation
from tools.model_server.protocol import ContainerError, compact_json, sse_event

CONTENT_TYPE_STREAM = "text/event-stream; charset=utf-8"  # starlette's StreamingResponse

_UNSUPPORTED_FIELDS = ("tools", "logprobs", "top_logprobs", "response_format", "n")


def error(
    status: int, message: str, error_type: str = "BadRequestError", param: str | None = None
) -> ContainerError:
    """vLLM's ErrorResponse: the status is repeated as ``code``."""
    body = compact_json({"error": _error_info(status, message, error_type, param)})
    return ContainerError(status, body, "application/json", message)


def _error_info(status: int, message: str, error_type: str, param: str | None) -> dict[str, Any]:
    return {"message": message, "type": error_type, "param": param, "code": status}


def _number(document: Mapping[str, Any], name: str) -> float | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(400, f"{name}: Input should be a valid number")
    return float(value)


def _content(index: int, message: object) -> dict[str, str]:
    if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
        raise error(400, f"messages.{index}: each message needs a string `role`")
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: text only here
        texts = [p.get("text") for p in content if isinstance(p, Mapping)]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise error(400, f"messages.{index}.content: only text parts are supported")
        content = "".join(texts)
    if not isinstance(content, str):
        raise error(400, f"messages.{index}.content: Input should be a valid string")
    return {"role": message["role"], "content": content}


@dataclass(frozen=True)
class PreparedChat:
    """A chat completion request ready to generate."""

    prompt: str
    prompt_tokens: int
    params: GenerateParams
    stream: bool
    include_usage: bool


def prepare(body: bytes, backend: Backend, max_model_len: int) -> PreparedChat:
    """Parse and validate one /invocations body as vLLM's chat completion route would."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as problem:
        raise error(400, f"JSON decode error: {problem}") from None
    if not isinstance(document, Mapping) or "messages" not in document:
        raise error(
            400,
            "This local vLLM server answers the chat completion request on /invocations "
            '({"messages": [...]}); other request types are not implemented.',
        )
    unsupported = [name for name in _UNSUPPORTED_FIELDS if document.get(name) not in (None, 1)]
    if unsupported:
        raise error(400, f"`{unsupported[0]}` is not implemented by this local server.")
    stream_options = document.get("stream_options") or {}
    if not isinstance(stream_options, Mapping):
        raise error(400, "stream_options: Input should be a valid dictionary")
    if stream_options and not document.get("stream"):  # ChatCompletionRequest's validator
        raise error(400, "Stream options can only be defined when `stream=True`.")
    raw_messages = document["messages"]
    if not isinstance(raw_messages, list) or not raw_messages:
        raise error(400, "messages: Input should be a non-empty list")
    messages = [_content(i, m) for i, m in enumerate(raw_messages)]
    try:
        prompt = backend.apply_chat_template(messages)
    except ChatTemplateError as problem:
        raise error(400, f"Chat template error: {problem}") from None

    prompt_tokens = backend.count_tokens(prompt)
    max_tokens = document.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise error(400, f"max_tokens must be at least 1, got {max_tokens}.")
    # OpenAIServing._validate_input: the prompt must leave room for one token, then
    # prompt + max_tokens must fit; a missing max_tokens is the rest of the model length.
    if prompt_tokens >= max_model_len:
        raise error(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"request has {prompt_tokens} input tokens. Please reduce the length of the input "
            "messages.",
            param="input_tokens",
        )
    if max_tokens is not None and prompt_tokens + max_tokens > max_model_len:
        raise error(
            400,
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {max_model_len} tokens and your request has "
            f"{prompt_tokens} input tokens ({max_tokens} > {max_model_len} - {prompt_tokens}).",
            param="max_tokens",
        )
    requested = max_model_len - prompt_tokens if max_tokens is None else max_tokens
    temperature = _number(document, "temperature")
    top_p = _number(document, "top_p")
    if top_p is not None and not 0 < top_p <= 1:
        raise error(400, f"top_p must be in (0, 1], got {top_p}.")
    stop = document.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    # vLLM decodes greedily at temperature 0 and samples otherwise (temperature 1 by default).
    greedy = temperature == 0.0
    seed = document.get("seed")
    params = GenerateParams(
        max_new_tokens=requested,
        temperature=None if greedy else temperature,
        top_p=None if greedy else top_p,
        do_sample=not greedy,
        seed=seed if seed is not None or greedy else secrets.randbits(63),
        stop=tuple(stop),
    )
    return PreparedChat(
        prompt,
        prompt_tokens,
        params,
        stream=bool(document.get("stream")),
        include_usage=bool(stream_options.get("include_usage")),
    )


def answer(chat: PreparedChat, generation: Generation, model_id: str) -> dict[str, Any]:
    """The whole answer: vLLM's ``chat.completion``."""
    return {
        "id": f"chatcmpl-{secrets.token_hex(16)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": _without_stop(generation, chat.params.stop),
                    "reasoning_content": None,
                    "tool_calls": [],
                },
                "logprobs": None,
                "finish_reason": _finish_reason(generation),
                "stop_reason": None,
            }
        ],
        "usage": {**_usage(chat, generation), "prompt_tokens_details": None},
        "prompt_logprobs": None,
    }


def stream(
    chat: PreparedChat,
    pieces: Iterator[str | Generation],
    model_id: str,
) -> Iterator[bytes]:
    """The SSE events of a streamed answer, each as soon as its text is certain."""
    header = {
        "id": f"chatcmpl-{secrets.token_hex(16)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
    }

    def chunk(delta: dict[str, str], **finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None, **finish}
        return sse_event({**header, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    # vLLM's stop buffer: text that could be the start of a stop string waits.
    hold = max((len(stop) for stop in chat.params.stop), default=1) - 1
    text = sent = ""

    def text_chunk(piece: str) -> Iterator[bytes]:
        nonlocal text, sent
        text += piece
        found = [text.index(stop) for stop in chat.params.stop if stop and stop in text]
        ready = text[: min(found)] if found else text[: len(text) - hold]
        if len(ready) > len(sent):
            yield chunk({"content": ready[len(sent) :]})
            sent = ready

    def end(generation: Generation) -> Iterator[bytes]:
        rest = _without_stop(generation, chat.params.stop)[len(sent) :]
        stop_reason = _matched_stop(generation, chat.params.stop)
        yield chunk(
            {"content": rest}, finish_reason=_finish_reason(generation), stop_reason=stop_reason
        )
        if chat.include_usage:
            yield sse_event({**header, "choices": [], "usage": _usage(chat, generation)})

    yield from chat_stream.events(pieces, text=text_chunk, end=end, error=_stream_error)


def _stream_error(message: str) -> bytes:
    """serving_chat's ``create_streaming_error_response``: json.dumps' spacing."""
    document = {"error": _error_info(500, message, "InternalServerError", None)}
    return b"data: " + json.dumps(document).encode() + b"\n\n"


def _finish_reason(generation: Generation) -> str:
    return "length" if generation.finish_reason == "length" else "stop"


def _matched_stop(generation: Generation, stops: tuple[str, ...]) -> str | None:
    if generation.finish_reason != "stop_sequence":
        return None
    return next((s for s in stops if s and generation.text.endswith(s)), None)


def _without_stop(generation: Generation, stops: tuple[str, ...]) -> str:
    """vLLM leaves the stop string out of the answer."""
    stop = _matched_stop(generation, stops)
    return generation.text[: -len(stop)] if stop else generation.text


def _usage(chat: PreparedChat, generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": chat.prompt_tokens,
        "total_tokens": chat.prompt_tokens + generation.generated_tokens,
        "completion_tokens": generation.generated_tokens,
    }
