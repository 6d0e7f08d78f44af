"""A Chat Completions body's fields: which the stack takes, refuses unless neutral, or ignores;
the JSON type checks; and `RequestRefused`, the error naming the field (OpenAI's `param`).

The three lists are checked against the official SDK's `CompletionCreateParams` by the
tests, so a field the API adds is a decision, not an accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llm_app.errors import AppError, ErrorCode


class RequestRefused(AppError):
    """A request OpenAI's API would refuse: a 400 (404 for an unknown model) naming `param`.

    An AppError (code invalid_request), so every edge answers it; `openai_code` is the
    `code` of OpenAI's error object (None where OpenAI sends none).
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None,
        openai_code: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message)
        self.param = param
        self.openai_code = openai_code
        self._status = status

    @property
    def status(self) -> int:
        return self._status


# ---------------------------------------------------------------------------------------------
# The API's fields: taken, refused unless neutral, or ignored
# ---------------------------------------------------------------------------------------------
SUPPORTED_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens",
        "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n", "user",
    }
)  # fmt: skip


def _absent(value: Any) -> bool:
    return value is None


def _one_of(*neutral: Any) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return value is None or any(
            value == candidate and type(value) is type(candidate) for candidate in neutral
        )

    return check


def _empty(value: Any) -> bool:
    return value is None or value in ([], {})


# Fields the API defines that this stack cannot honour, and the values that ask for nothing.
UNSUPPORTED_FIELDS: Mapping[str, Callable[[Any], bool]] = {
    "tools": _empty,
    "tool_choice": _one_of("none"),
    "parallel_tool_calls": _one_of(True),
    "functions": _empty,
    "function_call": _one_of("none"),
    "response_format": lambda value: value is None or value == {"type": "text"},
    "logprobs": _one_of(False),
    "top_logprobs": _one_of(0),
    "logit_bias": _empty,
    "audio": _absent,
    "modalities": lambda value: value is None or value == ["text"],
    "prediction": _absent,
    "web_search_options": _absent,
    "frequency_penalty": _one_of(0, 0.0),
    "presence_penalty": _one_of(0, 0.0),
    "reasoning_effort": _absent,
    "verbosity": _absent,
    "moderation": _absent,
    # Storing completions for OpenAI's evals: nothing here would keep them.
    "store": _one_of(False),
}

# Fields the API defines that cannot change the answer: taken and dropped.
IGNORED_FIELDS = frozenset(
    {
        "metadata", "service_tier", "safety_identifier", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention",
    }
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# JSON types
# ---------------------------------------------------------------------------------------------
JSON_TYPE_NAMES: Mapping[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "an object",
}


def required(body: Mapping[str, Any], field: str, kind: type) -> Any:
    if body.get(field) is None:
        raise RequestRefused(f"'{field}' is required.", param=field)
    return optional(body, field, kind)


def optional(body: Mapping[str, Any], field: str, kind: type, *, where: str | None = None) -> Any:
    """`body[field]` if it is of JSON type `kind` (None when absent or null); else refused."""
    value = body.get(field)
    if value is None:
        return None
    if isjson_type(value, kind):
        return value
    where = where or field
    raise RequestRefused(
        f"'{where}' must be {JSON_TYPE_NAMES[kind]}; got {json_type(value)}.",
        param=where,
        openai_code="invalid_type",
    )


def isjson_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # a JSON boolean is no number
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    if kind is dict:
        return isinstance(value, Mapping)
    return isinstance(value, kind)


def json_type(value: Any) -> str:
    for kind in (bool, str, int, float, list, dict):
        if isjson_type(value, kind):
            return JSON_TYPE_NAMES[kind]
    return "null" if value is None else type(value).__name__
