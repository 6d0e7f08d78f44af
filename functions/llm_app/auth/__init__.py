"""Sign-in without AWS credentials: API keys and OIDC/Cognito tokens, behind a NONE URL.

    settings = auth_settings_from_env()                 # at import, with the other settings
    authenticator = Authenticator(settings, dynamodb=client) if settings.bearer_enabled else None
    caller = authenticator.authenticate(headers.get("authorization"), datetime.now(UTC))
    ...                                                 # AuthError -> 401/429/503, reason -> metric
    authenticator.record_usage(caller, input_tokens=..., output_tokens=...)

The settings are read with the others, in llm_app.config. The package is the http layer's
(the edge calls it before any route runs; docs/architecture.md). `keys` holds the key format
and table layout that `python -m tools.api_keys` shares.
"""

from llm_app.config import AuthConfigError, AuthSettings, auth_settings_from_env

from .authenticator import Authenticator, bearer_credential
from .caller import Caller
from .errors import AuthError, AuthFailure, QuotaExceeded

__all__ = [
    "AuthConfigError",
    "AuthError",
    "AuthFailure",
    "AuthSettings",
    "Authenticator",
    "Caller",
    "QuotaExceeded",
    "auth_settings_from_env",
    "bearer_credential",
]
