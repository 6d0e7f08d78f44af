"""TGI's Messages API answers: a ``chat.completion``, or its stream of ``chat.completion.chunk``.

As TGI's router writes them (``router/src/lib.rs``, ``chat.rs``, ``server.rs``):

* buffered: one ``chat.completion`` with the whole message, ``finish_reason`` and ``usage``;
* ``"stream": true``: Server-Sent Events, ``data: {"object":"chat.completion.chunk","id":"",
  "created":...,"model":...,"system_fingerprint":...,"choices":[{"index":0,"delta":{"role":
  "assistant","content":"..."},"logprobs":null,"finish_reason":null}],"usage":null}`` per
  token; the last chunk carries the finish reason ("stop" for the end-of-sequence token,
  "length", "stop_sequence"); with ``stream_options.include_usage`` one more chunk follows,
  with no choices and the ``usage``; then ``data: [DONE]``. An error during generation is one
  ``data: {"error":{"message":...,"http_status_code":422}}`` event, then ``data: [DONE]``.

One difference, because a backend learns that a generation is over only after its last piece:
the finish reason always comes in a chunk of its own with empty content. TGI sends exactly
that when the model ends with its end-of-sequence token (a special token, whose text it
leaves out); when it stops on ``length`` or a stop sequence, TGI puts the finish reason on the
last token's chunk instead. Clients must read it from whichever chunk carries it.
Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tools.model_server import protocol
from tools.model_server.backend import (
    Backend,
    ChatTemplateError,
    Generation,
    GenerationFailure,
)
from tools.model_server.protocol import (
    SSE_DONE,
    ChatRequest,
    ContainerError,
    Limits,
    ValidRequest,
    sse_event,
)

CONTENT_TYPE_STREAM = "text/event-stream"  # axum's Sse response


@dataclass(frozen=True)
class PreparedChat:
    """A Messages API request ready to generate: the templated prompt, validated."""

    request: ChatRequest
    prompt: str
    valid: ValidRequest


def prepare(request: ChatRequest, backend: Backend, limits: Limits) -> PreparedChat:
    """Template and validate a chat request; raises the ContainerError TGI would answer."""
    try:
        prompt = backend.apply_chat_template([dict(m) for m in request.messages])
    except ChatTemplateError as error:
        raise ContainerError.tgi(
            422, f"Failed applying chat template to inputs: {error}", "template_error"
        ) from None
    valid = protocol.validate(prompt, request.sampling, limits, backend.count_tokens)
    return PreparedChat(request, prompt, valid)


def answer(
    chat: PreparedChat, backend: Backend, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """Generate the whole answer: TGI's ``chat.completion``."""
    generation = protocol.generate(backend, chat.prompt, chat.valid.params)
    return {
        "object": "chat.completion",
        "id": "",
        "created": int(clock()),
        "model": backend.model_id,
        "system_fingerprint": protocol.SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "logprobs": None,
                "finish_reason": _finish_reason(generation),
            }
        ],
        "usage": _usage(chat, generation),
    }


def stream(
    chat: PreparedChat,
    pieces: Iterator[str | Generation],
    model_id: str,
    *,
    clock: Callable[[], float] = time.time,
) -> Iterator[bytes]:
    """The SSE events of a streamed answer, each as soon as the backend's piece exists.

    ``pieces`` is ``Backend.generate_stream``'s iterator; its errors propagate (the server
    ends the SageMaker stream with ``ModelStreamError``).
    """

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        return sse_event(
            {
                "object": "chat.completion.chunk",
                "id": "",
                "created": int(clock()),
                "model": model_id,
                "system_fingerprint": protocol.SYSTEM_FINGERPRINT,
                "choices": choices,
                "usage": usage,
            }
        )

    def choice(content: str, finish_reason: str | None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": finish_reason,
        }

    try:
        for piece in pieces:
            if isinstance(piece, Generation):
                yield chunk([choice("", _finish_reason(piece))])
                if chat.request.include_usage:
                    yield chunk([], _usage(chat, piece))
                yield SSE_DONE
                return
            yield chunk([choice(piece, None)])
    except GenerationFailure as failure:  # TGI's InferError::into_openai_event
        yield sse_event({"error": {"message": str(failure), "http_status_code": 422}})
        yield SSE_DONE
        return
    raise RuntimeError("the backend's stream ended without its Generation")


def _finish_reason(generation: Generation) -> str:
    return "stop" if generation.finish_reason == "eos_token" else generation.finish_reason


def _usage(chat: PreparedChat, generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": chat.valid.input_tokens,
        "completion_tokens": generation.generated_tokens,
        "total_tokens": chat.valid.input_tokens + generation.generated_tokens,
    }
