"""Errors as values: a code, a message, and the one table that maps codes to HTTP statuses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    INVALID_SESSION_ID = "invalid_session_id"
    UNKNOWN_SESSION = "unknown_session"
    NO_CALLER_IDENTITY = "no_caller_identity"
    UNAUTHORIZED = "unauthorized"
    QUOTA_EXCEEDED = "quota_exceeded"
    SIGN_IN_UNAVAILABLE = "sign_in_unavailable"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REQUEST_TOO_LARGE = "request_too_large"
    CONTEXT_TOO_LONG = "context_too_long"
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_PAUSED = "model_paused"
    ENDPOINT_NOT_FOUND = "endpoint_not_found"
    MODEL_ERROR = "model_error"
    MODEL_TIMEOUT = "model_timeout"
    BAD_MODEL_OUTPUT = "bad_model_output"
    HISTORY_UNAVAILABLE = "history_unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    DOCUMENT_NOT_ALLOWED = "document_not_allowed"
    DOCUMENT_NOT_FOUND = "document_not_found"
    DOCUMENT_UNREADABLE = "document_unreadable"
    DOCUMENT_UNAVAILABLE = "document_unavailable"
    INTERNAL_ERROR = "internal_error"


HTTP_STATUS: Mapping[ErrorCode, int] = MappingProxyType(
    {
        ErrorCode.INVALID_JSON: 400,
        ErrorCode.INVALID_REQUEST: 400,
        ErrorCode.INVALID_SESSION_ID: 400,
        ErrorCode.UNKNOWN_SESSION: 400,
        ErrorCode.NO_CALLER_IDENTITY: 403,
        # A bearer mode is on and the request's bearer is missing or not valid (llm_app.auth).
        ErrorCode.UNAUTHORIZED: 401,
        # An API key used its daily tokens; retry-after says when its next UTC day begins.
        ErrorCode.QUOTA_EXCEEDED: 429,
        # The token issuer's signing keys could not be read: our upstream, not the caller.
        ErrorCode.SIGN_IN_UNAVAILABLE: 503,
        ErrorCode.METHOD_NOT_ALLOWED: 405,
        ErrorCode.REQUEST_TOO_LARGE: 413,
        ErrorCode.CONTEXT_TOO_LONG: 413,
        # The endpoint exists but cannot take the request now: the caller should retry.
        ErrorCode.MODEL_UNAVAILABLE: 503,
        # The deployment paused the endpoint on purpose; its message says how to resume.
        ErrorCode.MODEL_PAUSED: 503,
        # Our upstream (the endpoint) is missing or failed: a gateway error, not the caller's.
        ErrorCode.ENDPOINT_NOT_FOUND: 502,
        ErrorCode.MODEL_ERROR: 502,
        ErrorCode.BAD_MODEL_OUTPUT: 502,
        ErrorCode.MODEL_TIMEOUT: 504,
        ErrorCode.HISTORY_UNAVAILABLE: 503,
        # The work cannot finish before the function's own time limit: answered before it.
        ErrorCode.DEADLINE_EXCEEDED: 504,
        ErrorCode.DOCUMENT_NOT_ALLOWED: 403,
        ErrorCode.DOCUMENT_NOT_FOUND: 404,
        # Content we cannot turn into text (not UTF-8, a broken or image-only PDF).
        ErrorCode.DOCUMENT_UNREADABLE: 422,
        # S3 refused or failed the read (access denied, throttling, network): not the caller's.
        ErrorCode.DOCUMENT_UNAVAILABLE: 502,
        ErrorCode.INTERNAL_ERROR: 500,
    }
)


class AppError(Exception):
    """A failure the caller sees as `{"error": {"code", "message"}}` with the code's status."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
        log_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # The message without text from outside our code (a container's error sentence may
        # quote the request): what the log shows unless log_prompts is on.
        self.log_message = message if log_message is None else log_message
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def again(self) -> AppError:
        """A fresh exception with the same facts: one exception object is raised in one
        place only (a chain that stops after a failure raises its twin in other threads)."""
        twin = self.__class__.__new__(self.__class__)
        twin.__dict__.update(self.__dict__)
        twin.args = self.args
        return twin

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def __repr__(self) -> str:
        return f"AppError({self.code.value!r}, {self.message!r})"
