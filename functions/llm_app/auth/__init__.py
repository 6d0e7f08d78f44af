"""Sign-in without AWS credentials: API keys and OIDC/Cognito tokens, behind a NONE URL.

    settings = auth_settings_from_env()                 # at import, with the other settings
    authenticator = Authenticator(settings, dynamodb=client) if settings.bearer_enabled else None
    caller = authenticator.authenticate(headers.get("authorization"), datetime.now(UTC))
    ...                                                 # AuthError -> 401/429/503, reason -> metric
    authenticator.record_usage(caller, input_tokens=..., output_tokens=...)

`keys` holds the key format and table layout that `python -m tools.api_keys` shares; the
sub-package imports itself relatively so the command can import it as functions.llm_app.auth
without the functions folder on its path.
"""

from .authenticator import Authenticator, bearer_credential
from .caller import Caller
from .errors import AuthError, AuthFailure, QuotaExceeded
from .settings import AuthConfigError, AuthSettings, auth_settings_from_env

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
