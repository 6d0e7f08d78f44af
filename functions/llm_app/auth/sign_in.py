"""The edge's guard: a bearer mode on, every request signs in before its route runs.

    SIGN_IN = sign_in_from_settings(SETTINGS, auth_settings_from_env())   # None: no bearer mode
    caller = SIGN_IN.check(request.authorization)      # a Caller, or an AppError (401/429/503)
    SIGN_IN.answered(caller, done.usage)               # after the answer: the key's tokens

A refusal is counted by reason (the `SignInRefused` metric, dimension `reason`) and answered in
the route's error shape by the edge; neither the credential nor the reason reaches the caller.
`clock` is the time every check is made at: tests set it to cross a key's expiry or midnight.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from aws_lambda_powertools import Logger

from llm_app.config import AuthSettings, Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import Usage
from llm_app.runtime import metrics
from llm_app.runtime.aws import aws_client

from .authenticator import Authenticator
from .caller import Caller
from .errors import AuthError, AuthFailure, QuotaExceeded

# DynamoDB answers in milliseconds; a sign-in should not wait long for it (as chat's history).
KEYS_READ_TIMEOUT_SECONDS: Final = 5.0
KEYS_MAX_ATTEMPTS: Final = 3
SIGN_IN_REFUSED: Final = "SignInRefused"

logger = Logger(child=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SignIn:
    def __init__(
        self, authenticator: Authenticator, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.authenticator = authenticator
        self.clock = clock

    def check(self, authorization: str | None) -> Caller:
        """The verified caller; an AppError with the refusal's status and challenge."""
        try:
            return self.authenticator.authenticate(authorization, self.clock())
        except AuthError as refusal:
            metrics.count_by(SIGN_IN_REFUSED, "reason", refusal.reason.value)
            raise refused(refusal) from None

    def answered(self, caller: Caller, usage: Usage) -> None:
        """Adds an answer's tokens to its key's day; a failure here loses a count, not the
        answer (already sent, or about to be)."""
        try:
            self.authenticator.record_usage(
                caller, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
            )
        except Exception as error:  # any AWS failure: the answer stands
            logger.warning("usage not recorded", extra={"error_type": type(error).__name__})


def refused(refusal: AuthError) -> AppError:
    """The refusal as the edge answers it: the same message whatever the reason."""
    headers = {"www-authenticate": refusal.www_authenticate} if refusal.www_authenticate else {}
    if isinstance(refusal, QuotaExceeded):
        return AppError(
            ErrorCode.QUOTA_EXCEEDED, refusal.message, retry_after=refusal.retry_after_seconds
        )
    if refusal.reason is AuthFailure.ISSUER_UNAVAILABLE:
        return AppError(ErrorCode.SIGN_IN_UNAVAILABLE, refusal.message)
    return AppError(ErrorCode.UNAUTHORIZED, refusal.message, headers=headers)


def sign_in_from_settings(settings: Settings, auth: AuthSettings) -> SignIn | None:
    """At init: the guard of the bearer modes that are on (None: no bearer mode)."""
    if not auth.bearer_enabled:
        return None
    dynamodb = (
        aws_client(
            "dynamodb",
            settings,
            read_timeout=KEYS_READ_TIMEOUT_SECONDS,
            max_attempts=KEYS_MAX_ATTEMPTS,
            tcp_keepalive=True,
        )
        if auth.api_keys_enabled
        else None
    )
    return SignIn(Authenticator(auth, dynamodb=dynamodb))
