"""Why a sign-in was refused: one reason per refusal, for the metrics; never the credential."""

from __future__ import annotations

from enum import StrEnum


class AuthFailure(StrEnum):
    MISSING = "missing"
    # Not a bearer credential this deployment takes: another scheme, or not key- or JWT-shaped.
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    # A JWT without a claim every accepted token carries (exp, iss, sub).
    MISSING_CLAIM = "missing_claim"
    # Also a token whose `kid` is not in the issuer's JWKS: signed by a key we do not trust.
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    QUOTA_EXCEEDED = "quota_exceeded"
    # The issuer's discovery document or JWKS could not be read: our upstream, not the caller.
    ISSUER_UNAVAILABLE = "issuer_unavailable"


# The one message a refused caller reads, whatever was wrong: the reason is for our metrics only.
UNAUTHORIZED_MESSAGE = "A valid bearer token is required (Authorization: Bearer <key or token>)."


class AuthError(Exception):
    """A refused sign-in. `status` is the HTTP status; `www_authenticate` the 401 challenge."""

    def __init__(self, reason: AuthFailure, message: str = UNAUTHORIZED_MESSAGE) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def status(self) -> int:
        return 503 if self.reason is AuthFailure.ISSUER_UNAVAILABLE else 401

    @property
    def www_authenticate(self) -> str | None:
        """RFC 6750 section 3: a bare challenge without credentials, invalid_token with bad ones."""
        if self.status != 401:
            return None
        if self.reason is AuthFailure.MISSING:
            return "Bearer"
        return 'Bearer error="invalid_token"'


class QuotaExceeded(AuthError):
    """The key used its daily tokens; it may call again after `retry_after_seconds`."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            AuthFailure.QUOTA_EXCEEDED,
            "This key has used its daily tokens; it may call again at midnight UTC.",
        )
        self.retry_after_seconds = retry_after_seconds

    @property
    def status(self) -> int:
        return 429
