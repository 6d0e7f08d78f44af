"""TGI's request schema, validation and responses on its SageMaker route (``POST /invocations``).

Behaviour and wording follow text-generation-inference's router (``router/src/lib.rs``,
``validation.rs``, ``server.rs``, ``sagemaker.rs``):

* the body is an untagged union: a generate request (``{"inputs", "parameters"}``, answered
  ``[{"generated_text": ...}]``) or a Messages API request (``{"messages", ...}``, answered
  with an OpenAI-style ``chat.completion``);
* on this route ``return_full_text`` defaults to true for text-generation models, so the
  prompt is echoed in front of the generated text unless the caller says otherwise;
* a missing ``max_new_tokens`` (or ``max_tokens``) means 100; an explicit ``null`` means
  "as many as fit", capped at 1024;
* validation errors are 422 ``{"error": "Input validation error: ...", "error_type":
  "validation"}``, checked in TGI's order (the total-tokens check comes before the
  input-length check); malformed JSON is axum's plain-text 400 and an unrecognised body its
  plain-text 422.

Messages API requests are parsed here and answered by ``tgi_chat`` (a ``chat.completion``,
or with ``"stream": true`` its ``chat.completion.chunk`` Server-Sent Events). TGI features
this server cannot honour (``truncate``, ``typical_p``, ``watermark``, grammars, tools,
log-probabilities, streaming a generate request, ...) are refused with a 422 that says so,
never silently ignored. Standard library only.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tools.model_server.backend import (
    DecodingParams,
    GenerateParams,
    Generation,
)

DEFAULT_MAX_NEW_TOKENS = 100  # TGI's default_max_new_tokens() when the field is absent
DEFAULT_GENERATION_LENGTH = 1024  # TGI's cap when max_new_tokens is explicitly null
DEFAULT_MAX_STOP_SEQUENCES = 4  # TGI launcher's --max-stop-sequences default
SYSTEM_FINGERPRINT = "sagemaker_tgi-local"
_UNTAGGED = (
    "Failed to deserialize the JSON body into the target type: "
    "data did not match any variant of untagged enum SagemakerRequest"
)


def launcher_int(environment: Mapping[str, str], *names: str) -> int | None:
    """The first of TGI's launcher variables ``names`` set in ``environment``, as an integer.

    A model's environment is where SageMaker carries them (MAX_INPUT_TOKENS, ...); raises
    ValueError naming the variable when its value is not an integer.
    """
    for name in names:
        raw = environment.get(name)
        if raw:
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not an integer") from None
    return None


class ContainerError(Exception):
    """A non-200 answer from the model container: status, body and content type."""

    def __init__(
        self, status: int, body: bytes, content_type: str, message: str | None = None
    ) -> None:
        super().__init__(body.decode("utf-8", errors="replace"))
        self.status = status
        self.body = body
        self.content_type = content_type
        # The sentence alone (TGI's InferError as text), for an in-stream error event.
        self.message = str(self) if message is None else message

    @classmethod
    def tgi(cls, status: int, error: str, error_type: str) -> ContainerError:
        """TGI's ErrorResponse JSON."""
        body = compact_json({"error": error, "error_type": error_type})
        return cls(status, body, "application/json", error)

    @classmethod
    def plain(cls, status: int, text: str) -> ContainerError:
        """axum's extractor rejections, which TGI does not wrap in JSON."""
        return cls(status, text.encode(), "text/plain; charset=utf-8", text)


def compact_json(document: object) -> bytes:
    """JSON as serde_json writes it (no spaces), so bodies match TGI's byte for byte."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sse_event(document: object) -> bytes:
    """One Server-Sent Event carrying ``document``, as TGI (axum) and vLLM write them."""
    return b"data: " + compact_json(document) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"  # the last event of a Messages API stream


def overloaded() -> ContainerError:
    """TGI's answer past ``--max-concurrent-requests`` (InferError::Overloaded: 429)."""
    return ContainerError.tgi(429, "Model is overloaded", "overloaded")


def validation_error(message: str) -> ContainerError:
    return ContainerError.tgi(422, f"Input validation error: {message}", "validation")


def _unsupported(what: str) -> ContainerError:
    return validation_error(
        f"{what} is not supported by this local TGI server (sagemaker_tgi); "
        "the SageMaker TGI container supports it"
    )


@dataclass(frozen=True)
class Limits:
    """The container's token limits (TGI's MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS, ...)."""

    max_input_tokens: int
    max_total_tokens: int
    max_stop_sequences: int = DEFAULT_MAX_STOP_SEQUENCES

    def __post_init__(self) -> None:
        if self.max_input_tokens < 1:
            raise ValueError("max_input_tokens must be at least 1")
        if self.max_input_tokens >= self.max_total_tokens:
            # TGI's launcher refuses this combination too.
            raise ValueError(
                f"max_input_tokens ({self.max_input_tokens}) must be < max_total_tokens "
                f"({self.max_total_tokens})"
            )
        if self.max_stop_sequences < 0:
            raise ValueError("max_stop_sequences cannot be negative")


# ---------------------------------------------------------------------------
# JSON field readers with serde's strictness (no coercion between types)
# ---------------------------------------------------------------------------
_MISSING = object()


class _FieldError(Exception):
    """A field of the body has the wrong type; becomes the untagged-enum 422."""


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if value is None:
        return "null"
    return "sequence" if isinstance(value, list) else "map"


def _wrong(name: str, value: object, expected: str) -> _FieldError:
    return _FieldError(f"`{name}`: invalid type: {_describe(value)}, expected {expected}")


def _get(obj: Mapping[str, Any], name: str, read: Callable[[str, Any], Any], default: Any) -> Any:
    value = obj.get(name, _MISSING)
    if value is _MISSING:
        return default
    return read(name, value)


def _optional(read: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else read(name, value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(name, value, "f32")
    if not math.isfinite(value):
        raise _wrong(name, value, "a finite f32")
    return float(value)


def _integer(lowest: int, highest: int, rust_type: str) -> Callable[[str, Any], int]:
    def read(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(name, value, rust_type)
        if not lowest <= value <= highest:
            raise _FieldError(f"`{name}`: invalid value: integer `{value}`, expected {rust_type}")
        return value

    return read


_u32 = _integer(0, 2**32 - 1, "u32")
_i32 = _integer(-(2**31), 2**31 - 1, "i32")
_u64 = _integer(0, 2**64 - 1, "u64")
_usize = _integer(0, 2**64 - 1, "usize")


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong(name, value, "a boolean")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong(name, value, "a string")
    return value


def _str_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _wrong(name, value, "a sequence")
    return [_str(f"{name}[{i}]", item) for i, item in enumerate(value)]


def _object(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(name, value, "a map")
    return value


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Sampling(DecodingParams):
    """TGI's GenerateParameters after parsing, before validation.

    ``validate`` turns it into the backend's ``GenerateParams``: it resolves ``max_new_tokens``
    (None: as many as fit), ``do_sample`` and ``seed``, and checks or refuses the rest.
    """

    max_new_tokens: int | None
    frequency_penalty: float | None = None
    typical_p: float | None = None
    best_of: int | None = None
    top_n_tokens: int | None = None
    truncate: int | None = None
    unsupported: tuple[str, ...] = ()  # fields set to a value this server cannot honour


@dataclass(frozen=True)
class GenerateRequest:
    inputs: str
    sampling: Sampling
    return_full_text: bool | None
    details: bool


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict[str, str], ...]
    sampling: Sampling
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage


def parse_body(body: bytes, content_type: str | None) -> GenerateRequest | ChatRequest:
    """Decode an /invocations body the way TGI's ``Json<SagemakerRequest>`` extractor does."""
    if not _is_json_content_type(content_type):
        raise ContainerError.plain(415, "Expected request with `Content-Type: application/json`")
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise ContainerError.plain(
            400, f"Failed to parse the request body as JSON: invalid UTF-8 ({error.reason})"
        ) from None
    except json.JSONDecodeError as error:
        raise ContainerError.plain(
            400,
            f"Failed to parse the request body as JSON: {error.msg} "
            f"at line {error.lineno} column {error.colno}",
        ) from None
    except RecursionError:
        raise ContainerError.plain(
            400, "Failed to parse the request body as JSON: recursion limit exceeded"
        ) from None
    try:
        if not isinstance(document, dict):
            raise _FieldError(f"expected a JSON object, got {_describe(document)}")
        # serde tries the variants in order: Generate, Chat, Completion.
        if "inputs" in document:
            return _parse_generate(document)
        if "messages" in document:
            return _parse_chat(document)
        if "prompt" in document:
            raise _FieldError(
                "the Completions API (`prompt`) is not implemented by this local server; "
                "send `inputs` (generate) or `messages` (Messages API)"
            )
        raise _FieldError("expected `inputs` (generate) or `messages` (Messages API)")
    except _FieldError as error:
        raise ContainerError.plain(422, f"{_UNTAGGED}: {error}") from None


def _is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _parse_generate(document: Mapping[str, Any]) -> GenerateRequest:
    inputs = _str("inputs", document["inputs"])
    if _get(document, "stream", _bool, False):
        raise _unsupported("Streaming (`stream: true`)")
    raw = document.get("parameters", _MISSING)
    if raw is _MISSING:
        # TGI's default_parameters(): note it samples, unlike an empty `parameters` object.
        return GenerateRequest(
            inputs,
            Sampling(max_new_tokens=DEFAULT_MAX_NEW_TOKENS, do_sample=True),
            return_full_text=None,
            details=False,
        )
    params = _object("parameters", raw)
    unsupported = [
        name
        for name, is_set in (
            ("watermark", _get(params, "watermark", _bool, False)),
            ("decoder_input_details", _get(params, "decoder_input_details", _bool, False)),
            ("grammar", params.get("grammar") is not None),
            ("adapter_id", _get(params, "adapter_id", _optional(_str), None) is not None),
        )
        if is_set
    ]
    sampling = Sampling(
        max_new_tokens=_get(params, "max_new_tokens", _optional(_u32), DEFAULT_MAX_NEW_TOKENS),
        temperature=_get(params, "temperature", _optional(_float), None),
        top_p=_get(params, "top_p", _optional(_float), None),
        top_k=_get(params, "top_k", _optional(_i32), None),
        do_sample=_get(params, "do_sample", _bool, False),
        seed=_get(params, "seed", _optional(_u64), None),
        stop=tuple(_get(params, "stop", _str_list, [])),
        repetition_penalty=_get(params, "repetition_penalty", _optional(_float), None),
        frequency_penalty=_get(params, "frequency_penalty", _optional(_float), None),
        typical_p=_get(params, "typical_p", _optional(_float), None),
        best_of=_get(params, "best_of", _optional(_usize), None),
        top_n_tokens=_get(params, "top_n_tokens", _optional(_u32), None),
        truncate=_get(params, "truncate", _optional(_usize), None),
        unsupported=tuple(unsupported),
    )
    return GenerateRequest(
        inputs,
        sampling,
        return_full_text=_get(params, "return_full_text", _optional(_bool), None),
        details=_get(params, "details", _bool, False),
    )


def _parse_chat(document: Mapping[str, Any]) -> ChatRequest:
    raw_messages = document["messages"]
    if not isinstance(raw_messages, list):
        raise _wrong("messages", raw_messages, "a sequence")
    messages = tuple(_parse_message(i, m) for i, m in enumerate(raw_messages))
    stream_options = _get(document, "stream_options", _optional(_object), None) or {}
    unsupported = [
        name
        for name, is_set in (
            ("logprobs", _get(document, "logprobs", _optional(_bool), None)),
            ("tools", bool(document.get("tools"))),
            ("response_format", document.get("response_format") is not None),
        )
        if is_set
    ]
    temperature = _get(document, "temperature", _optional(_float), None)
    presence_penalty = _get(document, "presence_penalty", _optional(_float), None)
    # TGI's ChatRequest::try_into_generate: greedy only when temperature is exactly 0,
    # otherwise sampling (at temperature 1 when unset); presence_penalty + 2 is passed on
    # as the repetition penalty.
    greedy = temperature == 0.0
    max_tokens = _get(document, "max_tokens", _optional(_u32), None)
    sampling = Sampling(
        max_new_tokens=DEFAULT_MAX_NEW_TOKENS if max_tokens is None else max_tokens,
        temperature=None if greedy else temperature,
        top_p=_get(document, "top_p", _optional(_float), None),
        do_sample=not greedy,
        seed=_get(document, "seed", _optional(_u64), None),
        stop=tuple(_get(document, "stop", _optional(_str_list), None) or ()),
        repetition_penalty=None if presence_penalty is None else presence_penalty + 2.0,
        frequency_penalty=_get(document, "frequency_penalty", _optional(_float), None),
        top_n_tokens=_get(document, "top_logprobs", _optional(_u32), None),
        unsupported=tuple(unsupported),
    )
    return ChatRequest(
        messages,
        sampling,
        stream=_get(document, "stream", _bool, False),
        include_usage=_get(stream_options, "include_usage", _bool, False),
    )


def _parse_message(index: int, raw: Any) -> dict[str, str]:
    where = f"messages[{index}]"
    message = _object(where, raw)
    if "role" not in message:
        raise _FieldError(f"`{where}`: missing field `role`")
    if "content" not in message:
        raise _FieldError(f"`{where}`: missing field `content`")
    role = _str(f"{where}.role", message["role"])
    content = message["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _wrong(f"{where}.content", content, "a string or a sequence of chunks")
    # TGI joins text chunks and writes image chunks as markdown images.
    parts = []
    for j, raw_chunk in enumerate(content):
        chunk = _object(f"{where}.content[{j}]", raw_chunk)
        kind = chunk.get("type")
        if kind == "text":
            parts.append(_str(f"{where}.content[{j}].text", chunk.get("text")))
        elif kind == "image_url":
            image = _object(f"{where}.content[{j}].image_url", chunk.get("image_url"))
            parts.append(f"![]({_str(f'{where}.content[{j}].image_url.url', image.get('url'))})")
        else:
            raise _FieldError(
                f"`{where}.content[{j}].type`: unknown variant {json.dumps(kind)}, "
                "expected `text` or `image_url`"
            )
    return {"role": role, "content": "".join(parts)}


# ---------------------------------------------------------------------------
# Validation (router/src/validation.rs, in its order)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidRequest:
    params: GenerateParams
    input_tokens: int
    sampling: bool


def validate(
    inputs: str, sampling: Sampling, limits: Limits, count_tokens: Callable[[str], int]
) -> ValidRequest:
    is_sampling = (
        sampling.do_sample
        or (sampling.temperature is not None and sampling.temperature != 1.0)
        or (sampling.top_k is not None and sampling.top_k != 0)
        or sampling.top_p is not None
        or sampling.typical_p is not None
    )
    _check_parameters(inputs, sampling, limits, is_sampling)
    input_tokens = count_tokens(inputs)
    max_new_tokens = sampling.max_new_tokens
    if max_new_tokens is None:
        max_new_tokens = min(
            max(limits.max_total_tokens - input_tokens, 0), DEFAULT_GENERATION_LENGTH
        )
    if input_tokens + max_new_tokens > limits.max_total_tokens:
        raise validation_error(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_tokens} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    if input_tokens > limits.max_input_tokens:
        raise validation_error(
            f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_tokens}"
        )
    if max_new_tokens == 0:  # null max_new_tokens with a prompt that fills the context
        raise validation_error("`max_new_tokens` must be strictly positive")
    _check_supported(sampling)

    seed = sampling.seed
    if is_sampling and seed is None:
        seed = secrets.randbits(64)  # TGI draws one too, and reports it in `details`
    params = GenerateParams(
        max_new_tokens=max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        do_sample=is_sampling,
        seed=seed,
        stop=sampling.stop,
        repetition_penalty=sampling.repetition_penalty,
    )
    return ValidRequest(params, input_tokens, is_sampling)


def _check_parameters(inputs: str, sampling: Sampling, limits: Limits, is_sampling: bool) -> None:
    """The checks TGI makes before tokenizing, in its order."""
    if sampling.best_of is not None and sampling.best_of > 1:
        if not is_sampling:
            raise validation_error("you must use sampling when `best_of` is > 1")
        raise validation_error("`best_of` != 1 is not allowed for this endpoint")
    checks = (
        (
            sampling.temperature is not None and sampling.temperature <= 0.0,
            "`temperature` must be strictly positive",
        ),
        (
            sampling.repetition_penalty is not None and sampling.repetition_penalty <= 0.0,
            "`repetition_penalty` must be strictly positive",
        ),
        (
            sampling.frequency_penalty is not None
            and not -2.0 <= sampling.frequency_penalty <= 2.0,
            "`frequency_penalty` must be >= -2.0 and <= 2.0",
        ),
        (
            sampling.top_p is not None and not 0.0 < sampling.top_p < 1.0,
            "`top_p` must be > 0.0 and < 1.0",
        ),
        (
            sampling.typical_p is not None and not 0.0 < sampling.typical_p < 1.0,
            "`typical_p` must be > 0.0 and < 1.0",
        ),
        (sampling.top_k is not None and sampling.top_k <= 0, "`top_k` must be strictly positive"),
        (sampling.max_new_tokens == 0, "`max_new_tokens` must be strictly positive"),
        (
            len(sampling.stop) > limits.max_stop_sequences,
            f"`stop` supports up to {limits.max_stop_sequences} stop sequences. "
            f"Given: {len(sampling.stop)}",
        ),
        (bool(sampling.top_n_tokens), "`top_n_tokens` != 0 is not allowed for this endpoint"),
        (not inputs, "`inputs` cannot be empty"),
    )
    for failed, message in checks:
        if failed:
            raise validation_error(message)
    if sampling.truncate is not None:
        if sampling.truncate == 0 or sampling.truncate > limits.max_input_tokens:
            raise validation_error(
                f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. "
                f"Given: {sampling.truncate}"
            )
        raise _unsupported("`truncate`")


def _check_supported(sampling: Sampling) -> None:
    """Refuse what TGI would honour but this server cannot, instead of ignoring it."""
    if "grammar" in sampling.unsupported:
        raise validation_error("grammar is not supported")  # TGI's wording when disabled
    if sampling.frequency_penalty:
        raise _unsupported("`frequency_penalty`")
    if sampling.typical_p is not None:
        raise _unsupported("`typical_p`")
    if sampling.unsupported:
        raise _unsupported(f"`{sampling.unsupported[0]}`")


# ---------------------------------------------------------------------------
# Handling: validate, generate, shape the response
# ---------------------------------------------------------------------------
def handle(
    request: GenerateRequest,
    limits: Limits,
    count_tokens: Callable[[str], int],
    generate: Callable[[str, GenerateParams], Generation],
    *,
    default_return_full_text: bool = True,
) -> list[dict[str, Any]]:
    """Validate and run one generate request; returns the JSON TGI would answer.

    Messages API requests are ``tgi_chat``'s.
    """
    valid = validate(request.inputs, request.sampling, limits, count_tokens)
    generation = generate(request.inputs, valid.params)
    return_full_text = request.return_full_text
    if return_full_text is None:
        return_full_text = default_return_full_text
    response: dict[str, Any] = {
        "generated_text": (request.inputs if return_full_text else "") + generation.text
    }
    if request.details:
        response["details"] = {
            "finish_reason": generation.finish_reason,
            "generated_tokens": generation.generated_tokens,
            "seed": valid.params.seed if valid.sampling else None,
            # The backend interface returns text, not per-token log-probabilities.
            "prefill": [],
            "tokens": [],
        }
    return [response]
