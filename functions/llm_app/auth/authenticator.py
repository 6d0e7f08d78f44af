"""One call per request: the Authorization header in, a Caller out, or an AuthError."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from llm_app.config import AuthSettings

from .api_keys import ApiKeyVerifier
from .caller import Caller
from .errors import AuthError, AuthFailure
from .fetch import FetchJson, fetch_json
from .jwt_tokens import JwtVerifier
from .keys import KEY_PREFIX

# Far above any key or token a real issuer signs; refused before any parsing.
MAX_CREDENTIAL_CHARS: Final = 8192


class Authenticator:
    """Built once per container from AuthSettings; `dynamodb` (a boto3 client) for API keys.

    Both verifiers may be on at once: a credential's shape says which one checks it (a key
    starts with KEY_PREFIX; a JWT is three dot-separated parts).
    """

    def __init__(
        self, settings: AuthSettings, *, dynamodb: Any = None, fetch: FetchJson = fetch_json
    ) -> None:
        if not settings.bearer_enabled:
            raise ValueError("no bearer mode is configured (API_KEYS_TABLE_NAME, JWT_ISSUER)")
        if settings.api_keys_enabled and dynamodb is None:
            raise ValueError("API keys need a DynamoDB client")
        self._keys = (
            ApiKeyVerifier(dynamodb, settings.api_keys_table_name)
            if settings.api_keys_enabled
            else None
        )
        self._tokens = (
            JwtVerifier(settings.jwt_issuer, settings.jwt_audiences, settings.jwt_jwks_url, fetch)
            if settings.jwt_enabled
            else None
        )

    def authenticate(self, authorization: str | None, now: datetime) -> Caller:
        """`authorization` is the request's Authorization header; `now` an aware datetime."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        credential = bearer_credential(authorization)
        if credential.startswith(KEY_PREFIX) and self._keys is not None:
            return self._keys.verify(credential, now)
        if credential.count(".") == 2 and self._tokens is not None:
            return self._tokens.verify(credential, now)
        raise AuthError(AuthFailure.MALFORMED)

    def record_usage(self, caller: Caller, *, input_tokens: int, output_tokens: int) -> None:
        """After an answer: adds its tokens to the key's day (nothing for a token's caller)."""
        if caller.method == "api_key" and self._keys is not None:
            self._keys.record_usage(caller, input_tokens=input_tokens, output_tokens=output_tokens)


def bearer_credential(authorization: str | None) -> str:
    """The credential of `Bearer <credential>` (RFC 6750 section 2.1; the scheme is caseless)."""
    if authorization is None or not authorization.strip():
        raise AuthError(AuthFailure.MISSING)
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if (
        scheme.lower() != "bearer"
        or not credential
        or len(credential) > MAX_CREDENTIAL_CHARS
        or any(character.isspace() for character in credential)
    ):
        raise AuthError(AuthFailure.MALFORMED)
    return credential
