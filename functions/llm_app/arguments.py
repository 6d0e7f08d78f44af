"""The seed's request contract: a JSON array of positional arguments, or an object by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_app.errors import AppError, ErrorCode


def bind_arguments(payload: Any, names: Sequence[str], *, required: int = 1) -> dict[str, Any]:
    """Map `["a", "b"]` or `{"first": "a", "second": "b"}` onto `names`; absent ones left out."""
    shape = "[" + ", ".join(names) + "]"
    if isinstance(payload, list):
        if not required <= len(payload) <= len(names):
            expected = str(required) if required == len(names) else f"{required} to {len(names)}"
            raise AppError(
                ErrorCode.INVALID_REQUEST,
                f"Expected a JSON array of {expected} argument(s) {shape}; got {len(payload)}.",
            )
        return dict(zip(names, payload, strict=False))
    if isinstance(payload, dict):
        unknown = sorted(str(key) for key in payload if key not in names)
        if unknown:
            raise AppError(
                ErrorCode.INVALID_REQUEST,
                f"Unknown field(s) {', '.join(map(repr, unknown))}; expected: {', '.join(names)}.",
            )
        missing = [name for name in names[:required] if name not in payload]
        if missing:
            raise AppError(ErrorCode.INVALID_REQUEST, f"Missing field(s): {', '.join(missing)}.")
        return dict(payload)
    raise AppError(
        ErrorCode.INVALID_REQUEST,
        f"Send a JSON array {shape} or an object with those fields; got {type(payload).__name__}.",
    )


def require_question(value: Any, *, field: str, max_chars: int) -> str:
    """A question is a non-blank string of bounded length; surrounding whitespace is dropped."""
    if not isinstance(value, str):
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            f"'{field}' must be a string; got {_json_type(value)}.",
        )
    question = value.strip()
    if not question:
        raise AppError(ErrorCode.INVALID_REQUEST, f"'{field}' is empty.")
    if len(question) > max_chars:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"'{field}' is {len(question)} characters; the limit is {max_chars} "
            "(MAX_QUESTION_CHARS).",
        )
    return question


def require_flag(value: Any, *, field: str) -> bool:
    """A JSON boolean (`"stream": true`)."""
    if not isinstance(value, bool):
        raise AppError(
            ErrorCode.INVALID_REQUEST, f"'{field}' must be true or false; got {_json_type(value)}."
        )
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a string")
