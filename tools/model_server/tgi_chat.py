"""TGI's Messages API answers: a ``chat.completion``, or its stream of ``chat.completion.chunk``.

As TGI's router writes them (``router/src/lib.rs``, ``chat.rs``, ``server.rs``):

* buffered: one ``chat.completion`` with the whole message, ``finish_reason`` and ``usage``;
* ``"stream": true``: Server-Sent Events, ``data: {"object":"chat.completion.chunk","id":"",
  "created":...,"model":...,"system_fingerprint":...,"choices":[{"index":0,"delta":{"role":
  "assistant","content":"..."},"logprobs":null,"finish_reason":null}],"usage":null}`` per
  token; the last chunk carries the finish reason ("stop" for the end-of-sequence token,
  "length", "stop_sequence"); with ``stream_options.include_usage`` one more chunk follows,
  with no choices and the ``usage``; then ``data: [DONE]``.

Where TGI 3.x refuses a request depends on whether it streams. The chat template is applied
before either answer starts (a template error is an HTTP 422). The overload permit and the
validation come after: a buffered request gets them as HTTP errors (429 ``overloaded``, 422
``validation``), but a streamed one has already answered 200, because TGI's router runs them
inside ``generate_stream`` (``router/src/infer/mod.rs``) and ``chat_completions`` writes any
``InferError`` as one ``data: {"error":{"message":"Input validation error: ...",
"http_status_code":422}}`` event (422 whatever the error: ``into_openai_event``), then
``data: [DONE]``. An error during generation is that same event.

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

from tools.model_server import chat_stream, protocol
from tools.model_server.backend import Backend, ChatTemplateError, Generation
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


def template(request: ChatRequest, backend: Backend) -> str:
    """The prompt the model sees; raises the 422 ``template_error`` TGI answers before any
    stream starts (``ChatRequest::try_into_generate``)."""
    try:
        return backend.apply_chat_template([dict(m) for m in request.messages])
    except ChatTemplateError as error:
        raise ContainerError.tgi(
            422, f"Failed applying chat template to inputs: {error}", "template_error"
        ) from None


def validate(
    request: ChatRequest, prompt: str, limits: Limits, count_tokens: Callable[[str], int]
) -> PreparedChat:
    """TGI's validation of the templated prompt; raises its 422 ``validation`` error."""
    return PreparedChat(
        request, prompt, protocol.validate(prompt, request.sampling, limits, count_tokens)
    )


def answer(chat: PreparedChat, generation: Generation, model_id: str) -> dict[str, Any]:
    """The whole answer: TGI's ``chat.completion``."""
    return {
        "object": "chat.completion",
        "id": "",
        "created": int(time.time()),
        "model": model_id,
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
) -> Iterator[bytes]:
    """The SSE events of a streamed answer, each as soon as the backend's piece exists.

    ``pieces`` is ``Backend.generate_stream``'s iterator; a ``GenerationFailure`` becomes the
    error event, other errors propagate (the server ends the SageMaker stream with
    ``ModelStreamError``).
    """

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        return sse_event(
            {
                "object": "chat.completion.chunk",
                "id": "",
                "created": int(time.time()),
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

    def end(generation: Generation) -> Iterator[bytes]:
        yield chunk([choice("", _finish_reason(generation))])
        if chat.request.include_usage:
            yield chunk([], _usage(chat, generation))

    yield from chat_stream.events(
        pieces, text=lambda piece: iter([chunk([choice(piece, None)])]), end=end, error=error_event
    )


def refused(error: ContainerError) -> Iterator[bytes]:
    """A streamed request TGI refuses after answering 200 (overloaded, invalid):
    ``Err(err) => yield Ok(err.into_openai_event())``, then ``[DONE]``."""
    yield error_event(error.message)
    yield SSE_DONE


def error_event(message: str) -> bytes:
    """TGI's ``InferError::into_openai_event``: its ``http_status_code`` is always 422."""
    return sse_event({"error": {"message": message, "http_status_code": 422}})


def _finish_reason(generation: Generation) -> str:
    return "stop" if generation.finish_reason == "eos_token" else generation.finish_reason


def _usage(chat: PreparedChat, generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": chat.valid.input_tokens,
        "completion_tokens": generation.generated_tokens,
        "total_tokens": chat.valid.input_tokens + generation.generated_tokens,
    }
