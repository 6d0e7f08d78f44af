"""The contract between the HTTP/protocol layer and whatever produces text.

Standard library only: the server imports this on any Python, and test backends implement
``Backend`` without torch. The real one is ``tools.model_server.transformers_backend``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

FINISH_REASONS = ("length", "eos_token", "stop_sequence")


@dataclass(frozen=True, kw_only=True)
class DecodingParams:
    """How the next token is chosen and where generation stops, in TGI's meaning.

    Declared once for both sides: what a request asks for (``protocol.Sampling``) and what a
    backend obeys (``GenerateParams``). ``None`` means "not set": no temperature scaling, no
    top-p/top-k filtering, no penalty.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    do_sample: bool = False
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repetition_penalty: float | None = None


@dataclass(frozen=True, kw_only=True)
class GenerateParams(DecodingParams):
    """Validated generation parameters: what a backend obeys.

    ``do_sample`` is already resolved the way TGI resolves it (sampling is on when asked for
    or when any sampling parameter is set), so a backend only needs to obey it.
    """

    max_new_tokens: int


@dataclass(frozen=True)
class Generation:
    text: str  # generated text only (never the prompt); ends with the stop sequence if one was hit
    generated_tokens: int
    finish_reason: str  # "length" | "eos_token" | "stop_sequence"

    def __post_init__(self) -> None:
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(
                f"finish_reason must be one of {FINISH_REASONS}, not {self.finish_reason!r}"
            )
        if self.generated_tokens < 0:
            raise ValueError("generated_tokens cannot be negative")


class Backend(Protocol):
    model_id: str

    def count_tokens(self, text: str) -> int: ...

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template rendered with ``add_generation_prompt=True``."""
        ...

    def generate(self, prompt: str, params: GenerateParams) -> Generation: ...

    def generate_stream(self, prompt: str, params: GenerateParams) -> Iterator[str | Generation]:
        """The same generation as it happens: each new piece of text as soon as it exists,
        then one ``Generation`` (the whole text, the pieces joined) and nothing after it.

        Closing the iterator early (the client went away) stops the generation. Errors that
        prevent the generation (e.g. ``SageMakerError``) are raised by this call or by the
        first ``next``; ``ModelStreamFailure`` ends a stream that has started.
        """
        ...


class SageMakerError(Exception):
    """A platform error the server renders as the SageMaker runtime would.

    Raised by a backend (or the server) to answer with a SageMaker error instead of a
    container response, e.g. ``SageMakerError("ModelNotReadyException", 429, "...")`` or
    ``SageMakerError("ServiceUnavailable", 503, "...")``. boto3 raises a ``ClientError``
    whose ``response["Error"]["Code"]`` is ``code``.
    """

    def __init__(self, code: str, status: int, message: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a SageMaker error needs a 4xx or 5xx status, not {status}")
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"SageMakerError({self.code!r}, {self.status}, {self.message!r})"


class ModelStreamFailure(Exception):
    """The stream broke after it started: SageMaker sends a ``ModelStreamError`` event.

    ``error_code`` is one of SageMaker's (``StreamBroken``, ``ModelInvocationTimeExceeded``);
    boto3 raises ``EventStreamError`` whose ``response["Error"]`` has ``Code``
    "ModelStreamError" and ``Message`` ``message``.
    """

    def __init__(self, message: str, error_code: str = "StreamBroken") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


class GenerationFailure(Exception):
    """The engine failed during a generation it was streaming, and says so in the stream.

    TGI and vLLM write one error event and then ``data: [DONE]`` (``tgi_chat.stream``,
    ``vllm_protocol.stream``): the SageMaker stream itself ends normally.
    """


class ChatTemplateError(Exception):
    """The chat template could not render the messages; TGI answers 422 ``template_error``."""
