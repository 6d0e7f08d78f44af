"""A Chat Completions request body (a decoded JSON object) -> a frozen `ChatCompletionRequest`.

What OpenAI's API defines, this parser either takes, refuses with a 400 naming the field
(`param`), or ignores because it cannot change the answer (the lists are in
llm_app.http.openai.fields); fields the API does not define are ignored, as OpenAI's clients
expect (they send vendor extras).

Choices this stack makes:
- `model` must be one of the ids the models list holds (`ModelIds`): anything else is a 404
  `model_not_found`, as OpenAI answers it.
- `developer` messages are system messages (OpenAI's newer name for the same role); a list of
  text parts is joined with newlines; image, audio and file parts are refused by name.
- `max_completion_tokens` wins over the deprecated `max_tokens` when both are sent. A value
  above the stack's MAX_NEW_TOKENS is lowered to it rather than refused: that limit keeps a
  generation inside SageMaker's 60-second invocation, clients often send a large default, and
  an answer it cuts says so (`finish_reason: "length"`).
- An unsupported field sent with its neutral value (`tools: []`, `logprobs: false`,
  `response_format: {"type": "text"}`, `n: 1`...) is accepted: clients send defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_app.config import Settings
from llm_app.http.openai.fields import (
    IGNORED_FIELDS,
    SUPPORTED_FIELDS,
    UNSUPPORTED_FIELDS,
    RequestRefused,
    json_type,
    optional,
    required,
)

# OpenAI's limit on `stop` sequences (TGI's default max_stop_sequences is the same).
MAX_STOP_SEQUENCES = 4

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# Content part types, by the modality they carry: refused with the part named.
_NON_TEXT_PARTS = {
    "image_url": "image",
    "input_image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
}


@dataclass(frozen=True)
class ModelIds:
    """What `GET /v1/models` lists and `model` may name: the deployed model and an alias."""

    hub_id: str
    alias: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelIds:
        """The deployed model's Hub id (MODEL_ID; the endpoint's name when it is not known),
        and its name without the owner as a short alias."""
        hub_id = settings.model_id or settings.endpoint_name
        return cls(hub_id=hub_id, alias=hub_id.rpartition("/")[2])

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.hub_id,) if self.alias in ("", self.hub_id) else (self.hub_id, self.alias)


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant" ("developer" arrives as "system")
    content: str


@dataclass(frozen=True)
class ChatCompletionRequest:
    model: str  # as the caller named it (one of ModelIds.ids)
    messages: tuple[ChatMessage, ...]
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with usage
    max_tokens: int | None = None  # None: the stack's MAX_NEW_TOKENS; never above it
    temperature: float | None = None  # None: the stack's TEMPERATURE
    top_p: float | None = None  # None: the stack's TOP_P
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None  # the caller's end-user id: taken, never logged or sent on

    def generation_kwargs(
        self, *, max_new_tokens: int, temperature: float, top_p: float
    ) -> dict[str, Any]:
        """Sampling parameters in the Messages API's names, the stack's defaults filled in:
        the kwargs of `Endpoint.generate`, over the model's own (None: leave it out).

        As `Settings.generation_kwargs`: temperature 0 is greedy and then top_p is left out
        (TGI samples whenever a warper is set); top_p 1 means no nucleus cut, so it is left
        out too (TGI takes top_p only strictly between 0 and 1), and top_p 0 keeps only the
        likeliest token, which is greedy decoding.
        """
        chosen_temperature = temperature if self.temperature is None else self.temperature
        chosen_top_p = top_p if self.top_p is None else self.top_p
        if chosen_top_p == 0:
            chosen_temperature = 0
        sampled = chosen_temperature != 0 and 0 < chosen_top_p < 1
        kwargs: dict[str, Any] = {
            "max_tokens": max_new_tokens if self.max_tokens is None else self.max_tokens,
            "temperature": float(chosen_temperature),
            "top_p": float(chosen_top_p) if sampled else None,
        }
        if self.stop:
            kwargs["stop"] = list(self.stop)
        if self.seed is not None:
            kwargs["seed"] = self.seed
        return kwargs


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------
def parse_chat_completion(
    body: Any, *, models: ModelIds, max_new_tokens: int
) -> ChatCompletionRequest:
    """The request `body` (decoded JSON) as a `ChatCompletionRequest`; RequestRefused if not."""
    if not isinstance(body, Mapping):
        raise RequestRefused(
            f"The request body must be a JSON object; got {json_type(body)}.", param=None
        )
    for field, neutral in UNSUPPORTED_FIELDS.items():
        if field in body and not neutral(body[field]):
            raise RequestRefused(
                f"'{field}' is not supported by this deployment (a self-hosted text model); "
                "leave it out.",
                param=field,
                openai_code="unsupported_parameter",
            )
    model = required(body, "model", str)
    if model not in models.ids:
        raise RequestRefused(
            f"The model '{model}' does not exist; this deployment serves "
            f"{' and '.join(repr(i) for i in models.ids)} (GET /v1/models lists them).",
            param="model",
            openai_code="model_not_found",
            status=404,
        )
    n = optional(body, "n", int)
    if n is not None and n != 1:
        raise RequestRefused(
            f"'n' must be 1 here (one choice per request); got {n}.",
            param="n",
            openai_code="unsupported_value" if n > 1 else "invalid_value",
        )
    stream = bool(optional(body, "stream", bool))
    return ChatCompletionRequest(
        model=model,
        messages=_messages(body),
        stream=stream,
        include_usage=_include_usage(body, stream=stream),
        max_tokens=_max_tokens(body, max_new_tokens),
        temperature=_bounded(body, "temperature", 0, 2),
        top_p=_bounded(body, "top_p", 0, 1),
        stop=_stop(body),
        seed=optional(body, "seed", int),
        user=optional(body, "user", str),
    )


def _messages(body: Mapping[str, Any]) -> tuple[ChatMessage, ...]:
    raw = required(body, "messages", list)
    if not raw:
        raise RequestRefused(
            "'messages' is empty; send at least one user message.", param="messages"
        )
    messages = tuple(_message(item, f"messages[{index}]") for index, item in enumerate(raw))
    if not any(message.role == "user" for message in messages):
        raise RequestRefused("'messages' has no user message.", param="messages")
    return messages


def _message(item: Any, where: str) -> ChatMessage:
    if not isinstance(item, Mapping):
        raise RequestRefused(f"'{where}' must be an object; got {json_type(item)}.", param=where)
    role = item.get("role")
    if not isinstance(role, str):
        raise RequestRefused(f"'{where}.role' must be a string.", param=f"{where}.role")
    if role not in ROLES:
        tools = " (tool calls are not supported here)" if role in ("tool", "function") else ""
        raise RequestRefused(
            f"'{where}.role' is '{role}'{tools}; use one of: {', '.join(ROLES)}.",
            param=f"{where}.role",
        )
    for field in ("tool_calls", "function_call", "audio"):
        if item.get(field) is not None and item.get(field) != []:
            raise RequestRefused(
                f"'{where}.{field}' is not supported here (a text-only model without tools).",
                param=f"{where}.{field}",
                openai_code="unsupported_parameter",
            )
    return ChatMessage(ROLES[role], _content(item.get("content"), f"{where}.content"))


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestRefused(
            f"'{where}' must be a string or a list of text parts; got {json_type(content)}.",
            param=where,
        )
    texts: list[str] = []
    for index, part in enumerate(content):
        here = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in _NON_TEXT_PARTS:
            raise RequestRefused(
                f"'{here}' is an {_NON_TEXT_PARTS[kind]} part ({kind}); this model reads "
                "text only.",
                param=here,
                openai_code="unsupported_content_type",
            )
        if not isinstance(part, Mapping) or kind != "text" or not isinstance(part.get("text"), str):
            raise RequestRefused(
                f'\'{here}\' must be a text part: {{"type": "text", "text": "..."}}.',
                param=here,
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _include_usage(body: Mapping[str, Any], *, stream: bool) -> bool:
    options = optional(body, "stream_options", dict)
    if options is None:
        return False
    if not stream:
        raise RequestRefused(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )
    return bool(optional(options, "include_usage", bool, where="stream_options.include_usage"))


def _max_tokens(body: Mapping[str, Any], max_new_tokens: int) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):  # the newer name wins
        value: int | None = optional(body, field, int)
        if value is None:
            continue
        if value < 1:
            raise RequestRefused(
                f"'{field}' must be at least 1; got {value}.",
                param=field,
                openai_code="invalid_value",
            )
        return min(value, max_new_tokens)
    return None


def _bounded(body: Mapping[str, Any], field: str, low: float, high: float) -> float | None:
    value: float | None = optional(body, field, float)
    if value is not None and not low <= value <= high:
        raise RequestRefused(
            f"'{field}' must be from {low} to {high}; got {value}.",
            param=field,
            openai_code="invalid_value",
        )
    return value


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise RequestRefused("'stop' must be a string or a list of strings.", param="stop")
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise RequestRefused(
            f"'stop' has {len(sequences)} sequences; at most {MAX_STOP_SEQUENCES} are allowed.",
            param="stop",
            openai_code="invalid_value",
        )
    return tuple(s for s in sequences if s)


__all__: Sequence[str] = [
    "IGNORED_FIELDS",
    "SUPPORTED_FIELDS",
    "UNSUPPORTED_FIELDS",
    "ChatCompletionRequest",
    "ChatMessage",
    "ModelIds",
    "RequestRefused",
    "parse_chat_completion",
]
