"""OIDC tokens for tests: an issuer on loopback serving a discovery document and a JWKS, the
keys it signs with, and tokens valid or refused for each reason (real signatures, made here).

Fixtures (a pytest plugin, tests/conftest.py): `signing_keys` (RSA, another RSA, EC P-256),
`served_issuer` (one loopback server per module), `issuer` (as each test starts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from llm_app.auth import AuthFailure
from tests.support.canned_http import Canned, answering

AUDIENCE = "web-app"


@dataclass
class Issuer:
    """An OIDC issuer on loopback: a discovery document and a JWKS that tests may change."""

    url: str = ""
    jwks: list[dict[str, Any]] = field(default_factory=list)
    jwks_requests: int = 0
    failing: bool = False

    def respond(self, path: str) -> Canned:
        if self.failing:
            return Canned(500, "text/plain", b"issuer down")
        if path == "/.well-known/openid-configuration":
            document = {"issuer": self.url, "jwks_uri": f"{self.url}/keys"}
        elif path == "/keys":
            self.jwks_requests += 1
            document = {"keys": self.jwks}
        else:
            return Canned(404, "text/plain", b"not found")
        return Canned(200, "application/json", json.dumps(document).encode())


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "other-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(private_key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def served_issuer() -> Iterator[Issuer]:
    """One loopback server for the module (stopping one takes a poll interval)."""
    served = Issuer()
    with answering(served.respond) as url:
        served.url = url
        yield served


@pytest.fixture
def issuer(served_issuer: Issuer, signing_keys: dict[str, Any]) -> Issuer:
    """The issuer as each test starts: its RSA and EC keys, no requests yet, answering."""
    served_issuer.jwks = [
        public_jwk(signing_keys["rsa"], "rsa"),
        public_jwk(signing_keys["ec"], "ec"),
    ]
    served_issuer.jwks_requests = 0
    served_issuer.failing = False
    return served_issuer


def claims(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer.url,
        "sub": "user-1",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
    } | changes


def token(payload: dict[str, Any], key: Any, kid: str = "rsa", algorithm: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_public_key(issuer: Issuer, private_key: Any) -> str:
    """The classic confusion: HMAC keyed with the RSA public key a verifier holds as PEM."""
    secret = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa'}).encode())}."
        f"{b64(json.dumps(claims(issuer)).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def refused_tokens(issuer: Issuer, keys: dict[str, Any]) -> dict[str, tuple[str, AuthFailure]]:
    valid = token(claims(issuer), keys["rsa"])
    header, payload, signature = valid.split(".")
    forged_payload = b64(json.dumps(claims(issuer, sub="admin")).encode())
    unsigned_header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa"}).encode())
    return {
        "other issuer": (
            token(claims(issuer, iss="https://issuer.example"), keys["rsa"]),
            AuthFailure.WRONG_ISSUER,
        ),
        "other audience": (
            token(claims(issuer, aud="not-ours"), keys["rsa"]),
            AuthFailure.WRONG_AUDIENCE,
        ),
        "no audience": (token(claims(issuer, aud=None), keys["rsa"]), AuthFailure.WRONG_AUDIENCE),
        "alg none": (f"{unsigned_header}.{payload}.", AuthFailure.BAD_ALGORITHM),
        "HS256": (
            token(claims(issuer), "a-shared-secret-of-32-bytes-long!", "rsa", "HS256"),
            AuthFailure.BAD_ALGORITHM,
        ),
        "HS256 keyed with the public key": (
            hs256_with_the_public_key(issuer, keys["rsa"]),
            AuthFailure.BAD_ALGORITHM,
        ),
        "ES256 header on the RSA key": (
            token(claims(issuer), keys["ec"], "rsa", "ES256"),
            AuthFailure.BAD_ALGORITHM,
        ),
        "another key, same kid": (
            token(claims(issuer), keys["other-rsa"]),
            AuthFailure.BAD_SIGNATURE,
        ),
        "another key, unknown kid": (
            token(claims(issuer), keys["other-rsa"], "stranger"),
            AuthFailure.BAD_SIGNATURE,
        ),
        "tampered payload": (f"{header}.{forged_payload}.{signature}", AuthFailure.BAD_SIGNATURE),
        "no subject": (
            token({k: v for k, v in claims(issuer).items() if k != "sub"}, keys["rsa"]),
            AuthFailure.MISSING_CLAIM,
        ),
        "not a JWT": ("aaa.bbb.ccc", AuthFailure.MALFORMED),
        # An API key's shape, and this deployment takes no keys.
        "a key": ("llmk_" + "A" * 43, AuthFailure.MALFORMED),
    }
