"""vLLM's OpenAI server on SageMaker's route (``POST /invocations``), for the Messages API.

What AWS's vLLM DLC (SageMaker tag) answers, as vLLM's OpenAI-compatible server defines it
(``vllm/entrypoints/openai``): ``/invocations`` takes the body of the route it matches, here a
chat completion request (``{"messages": [...]}``); the answer is a ``chat.completion`` with
``finish_reason`` "stop" or "length" and a ``usage`` block. Errors are vLLM's
``ErrorResponse``: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status
as ``code`` (400 ``BadRequestError`` for a bad request). vLLM has one limit, the model
length (``--max-model-len``, SM_VLLM_MAX_MODEL_LEN): prompt plus ``max_tokens`` must fit in
it, and a missing ``max_tokens`` means "the rest of it".

Requests this server cannot honour (streaming, tools, log-probabilities, n > 1, other routes'
bodies) are refused with a 400 that says so, never silently ignored. Standard library only.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from tools.model_server.backend import Backend, ChatTemplateError, GenerateParams
from tools.model_server.protocol import ContainerError, compact_json

_UNSUPPORTED_FIELDS = ("tools", "logprobs", "top_logprobs", "response_format", "n")


def error(status: int, message: str, error_type: str = "BadRequestError") -> ContainerError:
    """vLLM's ErrorResponse: the status is repeated as ``code``."""
    body = compact_json(
        {"error": {"message": message, "type": error_type, "param": None, "code": status}}
    )
    return ContainerError(status, body, "application/json")


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


def handle(
    body: bytes,
    backend: Backend,
    max_model_len: int,
    *,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Answer one /invocations body as vLLM's chat completion route would."""
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
    if document.get("stream"):
        raise error(400, "Streaming (`stream: true`) is not implemented by this local server.")
    unsupported = [name for name in _UNSUPPORTED_FIELDS if document.get(name) not in (None, 1)]
    if unsupported:
        raise error(400, f"`{unsupported[0]}` is not implemented by this local server.")
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
    requested = max_model_len - prompt_tokens if max_tokens is None else max_tokens
    if prompt_tokens + requested > max_model_len or requested < 1:
        raise error(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {prompt_tokens + max(requested, 0)} tokens ({prompt_tokens} in the "
            f"messages, {max(requested, 0)} in the completion). Please reduce the length of "
            "the messages or completion.",
        )
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
    generation = backend.generate(prompt, params)
    text = generation.text
    if generation.finish_reason == "stop_sequence":  # vLLM leaves the stop string out
        text = next((text[: -len(s)] for s in params.stop if s and text.endswith(s)), text)
    finish_reason = "length" if generation.finish_reason == "length" else "stop"
    return {
        "id": f"chatcmpl-{secrets.token_hex(16)}",
        "object": "chat.completion",
        "created": int(clock()),
        "model": backend.model_id,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "reasoning_content": None,
                    "tool_calls": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + generation.generated_tokens,
            "completion_tokens": generation.generated_tokens,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
    }
