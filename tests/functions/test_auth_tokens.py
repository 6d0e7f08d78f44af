"""OIDC tokens, verified against a JWKS an issuer serves on loopback, and Cognito's from moto.

Tokens are real: signed with RS256/ES256 keys made here, or issued by moto's Cognito. Only the
JWKS refetch schedule runs on the injected clock; `exp` and `nbf` are PyJWT's, on real time.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from llm_app.auth import (
    AuthConfigError,
    Authenticator,
    AuthError,
    AuthFailure,
    AuthSettings,
    auth_settings_from_env,
)
from llm_app.auth.jwt_tokens import JWKS_REFETCH_INTERVAL
from tests.support.moto import api_keys_table, moto_client
from tests.support.tokens import (
    AUDIENCE,
    Issuer,
    claims,
    public_jwk,
    refused_tokens,
    token,
)
from tools.paths import REPO_ROOT

NOW = datetime.now(UTC)


@pytest.fixture
def authenticator(issuer: Issuer) -> Authenticator:
    """JWKS found through the issuer's discovery document, as a deployment's default."""
    return Authenticator(AuthSettings(jwt_issuer=issuer.url, jwt_audiences=(AUDIENCE, "cli")))


def refusal(authenticator: Authenticator, credential: str, now: datetime = NOW) -> AuthError:
    with pytest.raises(AuthError) as refused:
        authenticator.authenticate(f"Bearer {credential}", now)
    return refused.value


def test_rs256_and_es256_tokens_sign_in_as_issuer_and_subject(
    issuer: Issuer, authenticator: Authenticator, signing_keys: dict[str, Any]
) -> None:
    rs256 = token(claims(issuer), signing_keys["rsa"])
    es256 = token(
        claims(issuer, sub="user-2", aud=["other", "cli"]), signing_keys["ec"], "ec", "ES256"
    )

    first = authenticator.authenticate(f"Bearer {rs256}", NOW)
    second = authenticator.authenticate(f"Bearer {es256}", NOW)

    assert (first.method, first.owner, first.label) == ("jwt", f"jwt:{issuer.url}#user-1", "user-1")
    assert second.owner == f"jwt:{issuer.url}#user-2"
    assert issuer.jwks_requests == 1  # cached across requests


def test_expiry_and_not_before_allow_a_minute_of_clock_skew(
    issuer: Issuer, authenticator: Authenticator, signing_keys: dict[str, Any]
) -> None:
    now = int(time.time())
    key = signing_keys["rsa"]
    skewed = token(claims(issuer, exp=now - 30, nbf=now + 30), key)
    expired = token(claims(issuer, exp=now - 120), key)
    early = token(claims(issuer, nbf=now + 120), key)

    assert authenticator.authenticate(f"Bearer {skewed}", NOW).label == "user-1"
    assert refusal(authenticator, expired).reason is AuthFailure.EXPIRED
    assert refusal(authenticator, early).reason is AuthFailure.NOT_YET_VALID


REFUSED = (
    "other issuer", "other audience", "no audience", "alg none", "HS256",
    "HS256 keyed with the public key", "ES256 header on the RSA key", "another key, same kid",
    "another key, unknown kid", "tampered payload", "no subject", "not a JWT", "a key",
)  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_refused_tokens(
    issuer: Issuer, authenticator: Authenticator, signing_keys: dict[str, Any], case: str
) -> None:
    credential, reason = refused_tokens(issuer, signing_keys)[case]

    refused = refusal(authenticator, credential)

    assert refused.reason is reason
    assert (refused.status, refused.www_authenticate) == (401, 'Bearer error="invalid_token"')
    assert credential not in str(refused)


def test_an_unknown_kid_refetches_the_jwks_at_most_once_a_minute(
    issuer: Issuer, authenticator: Authenticator, signing_keys: dict[str, Any]
) -> None:
    authenticator.authenticate(f"Bearer {token(claims(issuer), signing_keys['rsa'])}", NOW)
    issuer.jwks.append(public_jwk(signing_keys["other-rsa"], "rotated"))
    rotated = token(claims(issuer), signing_keys["other-rsa"], "rotated")
    strangers = [token(claims(issuer), signing_keys["other-rsa"], f"kid-{n}") for n in range(3)]
    a_minute_on = NOW + JWKS_REFETCH_INTERVAL

    assert refusal(authenticator, rotated, NOW + timedelta(seconds=1)).reason is (
        AuthFailure.BAD_SIGNATURE
    )
    # A minute after the last fetch, an unknown kid refetches: the issuer rotated its keys.
    assert authenticator.authenticate(f"Bearer {rotated}", a_minute_on).label == "user-1"
    for stranger in strangers:
        refusal(authenticator, stranger, a_minute_on + timedelta(seconds=30))
    assert issuer.jwks_requests == 2
    refusal(authenticator, strangers[0], a_minute_on + JWKS_REFETCH_INTERVAL)
    assert issuer.jwks_requests == 3


def test_an_issuer_that_cannot_serve_its_keys_is_a_503(
    issuer: Issuer, authenticator: Authenticator, signing_keys: dict[str, Any]
) -> None:
    issuer.failing = True

    refused = refusal(authenticator, token(claims(issuer), signing_keys["rsa"]))

    assert (refused.reason, refused.status) == (AuthFailure.ISSUER_UNAVAILABLE, 503)
    assert refused.www_authenticate is None


def test_keys_and_tokens_together(
    issuer: Issuer, signing_keys: dict[str, Any], moto_url: str
) -> None:
    """Both verifiers on: each credential goes to the one its shape names."""
    dynamodb = moto_client("dynamodb", moto_url)
    with api_keys_table(dynamodb) as table:
        both = Authenticator(
            AuthSettings(
                api_keys_table_name=table, jwt_issuer=issuer.url, jwt_audiences=(AUDIENCE,)
            ),
            dynamodb=dynamodb,
        )
        signed_in = both.authenticate(f"Bearer {token(claims(issuer), signing_keys['rsa'])}", NOW)
        refused = refusal(both, "llmk_" + "A" * 43)

    assert signed_in.method == "jwt"
    assert refused.reason is AuthFailure.UNKNOWN_KEY


@pytest.fixture(scope="module")
def cognito(moto_url: str) -> dict[str, str]:
    """A user pool with a public app client and a signed-in user: moto issues real RS256 tokens."""
    client = moto_client("cognito-idp", moto_url)
    pool = client.create_user_pool(PoolName=f"pool-{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    app = client.create_user_pool_client(
        UserPoolId=pool, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    client.admin_create_user(UserPoolId=pool, Username="alice", TemporaryPassword="Temp-Passw0rd!")
    client.admin_set_user_password(
        UserPoolId=pool, Username="alice", Password="Real-Passw0rd!", Permanent=True
    )
    tokens = client.initiate_auth(
        ClientId=app,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": "Real-Passw0rd!"},
    )["AuthenticationResult"]
    return {
        "client_id": app,
        "access": tokens["AccessToken"],
        "id": tokens["IdToken"],
        "issuer": jwt.decode(tokens["AccessToken"], options={"verify_signature": False})["iss"],
        "jwks_url": f"{moto_url}/{pool}/.well-known/jwks.json",
    }


def cognito_authenticator(cognito: dict[str, str], audience: str) -> Authenticator:
    return Authenticator(
        AuthSettings(
            jwt_issuer=cognito["issuer"],
            jwt_audiences=(audience,),
            jwt_jwks_url=cognito["jwks_url"],
        )
    )


def test_cognito_access_and_id_tokens_sign_in_by_client_id_and_aud(cognito: dict[str, str]) -> None:
    authenticator = cognito_authenticator(cognito, cognito["client_id"])

    by_access = authenticator.authenticate(f"Bearer {cognito['access']}", NOW)
    by_id = authenticator.authenticate(f"Bearer {cognito['id']}", NOW)

    assert by_access.owner == by_id.owner
    assert by_access.owner.startswith(f"jwt:{cognito['issuer']}#")


def test_cognito_tokens_for_another_app_client_are_refused(cognito: dict[str, str]) -> None:
    authenticator = cognito_authenticator(cognito, "another-app-client")

    for kind in ("access", "id"):
        assert refusal(authenticator, cognito[kind]).reason is AuthFailure.WRONG_AUDIENCE


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"JWT_ISSUER": "https://issuer.example"}, "JWT_AUDIENCES must name"),
        (
            {"JWT_ISSUER": "http://issuer.example", "JWT_AUDIENCES": "a"},
            "JWT_ISSUER must be an https",
        ),
        (
            {
                "JWT_ISSUER": "https://i.example",
                "JWT_AUDIENCES": "a",
                "JWT_JWKS_URL": "http://10.0.0.1/k",
            },
            "JWT_JWKS_URL must be an https",
        ),
        ({"JWT_JWKS_URL": "https://i.example/keys"}, "JWT_ISSUER is not"),
    ],
)
def test_settings_refuse_what_would_weaken_verification(env: dict[str, str], problem: str) -> None:
    with pytest.raises(AuthConfigError, match=problem):
        auth_settings_from_env(env)


def test_settings_read_from_the_environment() -> None:
    settings = auth_settings_from_env(
        {
            "API_KEYS_TABLE_NAME": "keys",
            "JWT_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "JWT_AUDIENCES": " web , cli ,",
            "JWT_JWKS_URL": "http://[::1]:8080/keys",
        }
    )

    assert settings.jwt_audiences == ("web", "cli")
    assert (settings.api_keys_enabled, settings.jwt_enabled) == (True, True)
    assert not auth_settings_from_env({}).bearer_enabled


def test_pyjwt_is_imported_only_when_tokens_are_configured() -> None:
    probe = (
        "import sys\n"
        "from llm_app.auth import Authenticator, AuthSettings\n"
        "Authenticator(AuthSettings(api_keys_table_name='keys'), dynamodb=object())\n"
        "print('jwt' in sys.modules, 'cryptography' in sys.modules)\n"
        "Authenticator(AuthSettings(jwt_issuer='https://i.example', jwt_audiences=('a',)))\n"
        "print('jwt' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT / "functions",
    )

    assert result.stdout.split() == ["False", "False", "True"]
