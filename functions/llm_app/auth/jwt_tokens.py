"""OIDC and Cognito tokens, verified by PyJWT against the issuer's JWKS.

PyJWT (and the `cryptography` it verifies with) is imported when a verifier is built, which the
authenticator does only when JWT_ISSUER is set: deployments without tokens never load it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from .caller import Caller
from .errors import AuthError, AuthFailure
from .fetch import ISSUER_UNAVAILABLE_MESSAGE, FetchJson, fetch_json

if TYPE_CHECKING:
    from jwt import PyJWK

# Asymmetric only: `none` and HMAC (whose secret a public key could be passed off as) never.
ALGORITHMS: Final = ("RS256", "ES256")
LEEWAY: Final = timedelta(seconds=60)
# A token with a `kid` we do not hold sends us to the issuer at most this often.
JWKS_REFETCH_INTERVAL: Final = timedelta(minutes=1)
# Keys the issuer dropped (rotated out, compromised) stop verifying within this.
JWKS_MAX_AGE: Final = timedelta(hours=1)
REQUIRED_CLAIMS: Final = ("exp", "iss", "sub")


class JwtVerifier:
    def __init__(
        self,
        issuer: str,
        audiences: tuple[str, ...],
        jwks_url: str = "",
        fetch: FetchJson = fetch_json,
    ) -> None:
        import jwt  # noqa: PLC0415 (deferred: see the module's docstring)

        self._jwt = jwt
        self._issuer = issuer
        self._audiences = frozenset(audiences)
        self._jwks_url = jwks_url
        self._fetch = fetch
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None

    def verify(self, token: str, now: datetime) -> Caller:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthError(AuthFailure.MALFORMED) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise AuthError(AuthFailure.BAD_ALGORITHM)
        if not isinstance(kid, str):
            raise AuthError(AuthFailure.BAD_SIGNATURE)
        key = self._signing_key(kid, now)
        if key is None:
            raise AuthError(AuthFailure.BAD_SIGNATURE)
        if key.algorithm_name != algorithm:
            raise AuthError(AuthFailure.BAD_ALGORITHM)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
        except jwt.InvalidTokenError as error:
            raise AuthError(_reason(jwt, error)) from None
        if not self._audiences & _token_audiences(claims):
            raise AuthError(AuthFailure.WRONG_AUDIENCE)
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthError(AuthFailure.MISSING_CLAIM)
        return Caller(owner=f"jwt:{self._issuer}#{subject}", method="jwt", label=subject)

    def _signing_key(self, kid: str, now: datetime) -> PyJWK | None:
        stale = self._fetched_at is None or now - self._fetched_at >= JWKS_MAX_AGE
        if (kid not in self._keys or stale) and (
            self._attempted_at is None or now - self._attempted_at >= JWKS_REFETCH_INTERVAL
        ):
            self._attempted_at = now
            try:
                self._keys = self._load_keys()
                self._fetched_at = now
            except AuthError:
                # Keep verifying with the keys already held; with none, the issuer is down.
                if not self._keys:
                    raise
        if not self._keys:
            raise AuthError(AuthFailure.ISSUER_UNAVAILABLE, ISSUER_UNAVAILABLE_MESSAGE)
        return self._keys.get(kid)

    def _load_keys(self) -> dict[str, PyJWK]:
        document = self._fetch(self._jwks_url or self._discovered_jwks_url())
        found = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(found, list):
            raise AuthError(AuthFailure.ISSUER_UNAVAILABLE, "The issuer's JWKS has no keys.")
        usable: dict[str, PyJWK] = {}
        for entry in found:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = self._jwt.PyJWK(entry)
            except (self._jwt.PyJWKError, self._jwt.InvalidKeyError):
                continue  # a kind of key we never accept (an HMAC "oct" key, say)
            if isinstance(key.key_id, str) and key.algorithm_name in ALGORITHMS:
                usable[key.key_id] = key
        return usable

    def _discovered_jwks_url(self) -> str:
        """OpenID Connect Discovery 1.0, section 4: its `issuer` must be ours, exactly."""
        document = self._fetch(self._issuer.rstrip("/") + "/.well-known/openid-configuration")
        if (
            not isinstance(document, dict)
            or document.get("issuer") != self._issuer
            or not isinstance(document.get("jwks_uri"), str)
        ):
            raise AuthError(
                AuthFailure.ISSUER_UNAVAILABLE, "The issuer's discovery document does not match."
            )
        # Remembered: the issuer's keys move, its discovery document's jwks_uri does not.
        self._jwks_url = document["jwks_uri"]
        return self._jwks_url


def _token_audiences(claims: dict[str, Any]) -> frozenset[str]:
    """`aud` (a string or a list); Cognito access tokens carry `client_id` and no `aud`."""
    audience = claims.get("aud")
    if audience is None and claims.get("token_use") == "access":
        audience = claims.get("client_id")
    if isinstance(audience, str):
        return frozenset({audience})
    if isinstance(audience, list):
        return frozenset(item for item in audience if isinstance(item, str))
    return frozenset()


def _reason(jwt: Any, error: Exception) -> AuthFailure:
    # Subclasses before their bases: ExpiredSignatureError is a DecodeError's sibling, etc.
    table = (
        (jwt.ExpiredSignatureError, AuthFailure.EXPIRED),
        (jwt.ImmatureSignatureError, AuthFailure.NOT_YET_VALID),
        (jwt.InvalidIssuerError, AuthFailure.WRONG_ISSUER),
        (jwt.MissingRequiredClaimError, AuthFailure.MISSING_CLAIM),
        (jwt.InvalidSignatureError, AuthFailure.BAD_SIGNATURE),
        (jwt.InvalidAlgorithmError, AuthFailure.BAD_ALGORITHM),
    )
    for kind, reason in table:
        if isinstance(error, kind):
            return reason
    return AuthFailure.MALFORMED
