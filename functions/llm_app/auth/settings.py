"""The sign-in settings, read from the environment in this one function."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


class AuthConfigError(ValueError):
    """The sign-in environment is wrong; raised at import so the deploy fails loudly."""


@dataclass(frozen=True)
class AuthSettings:
    # API keys (api_keys_enabled): the DynamoDB table of keys and usage; empty = no keys.
    api_keys_table_name: str = ""
    # OIDC/Cognito tokens: the exact `iss` accepted; empty = no tokens.
    jwt_issuer: str = ""
    # The `aud` (or a Cognito access token's `client_id`) a token must name one of.
    jwt_audiences: tuple[str, ...] = ()
    # Where the signing keys are; empty = the jwks_uri of the issuer's discovery document.
    jwt_jwks_url: str = ""

    @property
    def api_keys_enabled(self) -> bool:
        return bool(self.api_keys_table_name)

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_issuer)

    @property
    def bearer_enabled(self) -> bool:
        return self.api_keys_enabled or self.jwt_enabled


def auth_settings_from_env(env: Mapping[str, str] | None = None) -> AuthSettings:
    """API_KEYS_TABLE_NAME, JWT_ISSUER, JWT_AUDIENCES (comma-separated), JWT_JWKS_URL."""
    env = os.environ if env is None else env
    settings = AuthSettings(
        api_keys_table_name=env.get("API_KEYS_TABLE_NAME", "").strip(),
        jwt_issuer=env.get("JWT_ISSUER", "").strip(),
        jwt_audiences=tuple(
            audience.strip()
            for audience in env.get("JWT_AUDIENCES", "").split(",")
            if audience.strip()
        ),
        jwt_jwks_url=env.get("JWT_JWKS_URL", "").strip(),
    )
    problems: list[str] = []
    if settings.jwt_enabled and not settings.jwt_audiences:
        problems.append("JWT_AUDIENCES must name at least one audience when JWT_ISSUER is set")
    if settings.jwt_jwks_url and not settings.jwt_enabled:
        problems.append("JWT_JWKS_URL is set but JWT_ISSUER is not")
    for name, url in (("JWT_ISSUER", settings.jwt_issuer), ("JWT_JWKS_URL", settings.jwt_jwks_url)):
        if url and not is_fetchable(url):
            problems.append(f"{name} must be an https URL (http only on a loopback address)")
    if problems:
        raise AuthConfigError("; ".join(problems))
    return settings


def is_fetchable(url: str) -> bool:
    """https anywhere; plain http only to this machine (tests and `make local`)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
