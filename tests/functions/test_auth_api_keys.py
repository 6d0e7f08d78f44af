"""API keys in moto's DynamoDB: made by `python -m tools.api_keys`, verified by llm_app.auth.

The clock is injected: expiry, revocation's cache window and the daily quota's UTC midnight
are crossed by moving `now`, never by waiting.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_app.auth import Authenticator, AuthError, AuthFailure, AuthSettings, QuotaExceeded
from tests.support.moto import REGION
from tools.api_keys.__main__ import main as api_keys_main
from tools.api_keys.store import KeyStoreError, create_key, list_keys, revoke_key
from tools.devstack import aws_env
from tools.paths import REPO_ROOT

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dynamodb(keys_dynamodb: Any) -> Any:
    return keys_dynamodb


@pytest.fixture(scope="module")
def table(keys_table: str) -> str:
    return keys_table


@pytest.fixture
def authenticator(dynamodb: Any, table: str) -> Authenticator:
    return Authenticator(AuthSettings(api_keys_table_name=table), dynamodb=dynamodb)


def refusal(authenticator: Authenticator, header: str | None, now: datetime = NOON) -> AuthError:
    with pytest.raises(AuthError) as refused:
        authenticator.authenticate(header, now)
    return refused.value


def test_the_command_prints_a_key_alone_on_its_last_line_and_it_signs_in(
    moto_url: str, table: str, authenticator: Authenticator
) -> None:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.api_keys",
            "create",
            "--table",
            table,
            "--name",
            "open-webui",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", **aws_env(moto_url, region=REGION)},
    )
    key = created.stdout.splitlines()[-1]

    caller = authenticator.authenticate(f"Bearer {key}", datetime.now(UTC))

    assert key.startswith("llmk_")
    assert caller.method == "api_key"
    assert caller.label == "open-webui"
    assert caller.owner.startswith("key:")
    assert key not in caller.owner


def test_two_keys_own_different_conversations(
    dynamodb: Any, table: str, authenticator: Authenticator
) -> None:
    first = create_key(dynamodb, table, "alice", NOON).key
    second = create_key(dynamodb, table, "bob", NOON).key

    owners = {authenticator.authenticate(f"Bearer {key}", NOON).owner for key in (first, second)}

    assert len(owners) == 2


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, AuthFailure.MISSING),
        ("", AuthFailure.MISSING),
        ("Bearer", AuthFailure.MALFORMED),
        ("Bearer ", AuthFailure.MALFORMED),
        ("Basic YWxpY2U6c2VjcmV0", AuthFailure.MALFORMED),
        ("AWS4-HMAC-SHA256 Credential=AKIA/20260314/eu-west-1/lambda", AuthFailure.MALFORMED),
        ("Bearer llmk_short", AuthFailure.MALFORMED),
        ("Bearer not-a-key-at-all", AuthFailure.MALFORMED),
        ("Bearer llmk_" + "A" * 43 + " trailing", AuthFailure.MALFORMED),
        # Well formed, never issued.
        ("Bearer llmk_" + "A" * 43, AuthFailure.UNKNOWN_KEY),
        # A JWT-shaped credential, and this deployment takes no tokens.
        ("Bearer aaa.bbb.ccc", AuthFailure.MALFORMED),
    ],
)
def test_refusals_name_a_reason_and_never_the_credential(
    authenticator: Authenticator, header: str | None, reason: AuthFailure
) -> None:
    refused = refusal(authenticator, header)

    assert refused.reason is reason
    assert refused.status == 401
    assert refused.www_authenticate == (
        "Bearer" if reason is AuthFailure.MISSING else 'Bearer error="invalid_token"'
    )
    credential = (header or "").partition(" ")[2]
    assert not credential or credential not in str(refused)


def test_the_scheme_is_caseless(dynamodb: Any, table: str, authenticator: Authenticator) -> None:
    key = create_key(dynamodb, table, "script", NOON).key

    assert authenticator.authenticate(f"bearer  {key}", NOON).label == "script"


def test_a_revoked_key_is_refused_within_a_minute_by_a_container_that_knew_it(
    dynamodb: Any, table: str, authenticator: Authenticator
) -> None:
    key = create_key(dynamodb, table, "laptop", NOON).key
    authenticator.authenticate(f"Bearer {key}", NOON)

    revoke_key(dynamodb, table, "laptop", NOON)

    later = NOON + timedelta(seconds=60)
    assert refusal(authenticator, f"Bearer {key}", later).reason is AuthFailure.REVOKED
    fresh = Authenticator(AuthSettings(api_keys_table_name=table), dynamodb=dynamodb)
    assert refusal(fresh, f"Bearer {key}", NOON).reason is AuthFailure.REVOKED


def test_an_expired_key_is_refused_at_once(
    dynamodb: Any, table: str, authenticator: Authenticator
) -> None:
    key = create_key(dynamodb, table, "trial", NOON, expires_days=1).key
    authenticator.authenticate(f"Bearer {key}", NOON + timedelta(hours=23))

    refused = refusal(authenticator, f"Bearer {key}", NOON + timedelta(days=1))

    assert refused.reason is AuthFailure.EXPIRED


def test_a_key_over_its_daily_tokens_waits_for_midnight_utc_and_then_works(
    dynamodb: Any, table: str, authenticator: Authenticator
) -> None:
    key = create_key(dynamodb, table, "metered", NOON, daily_tokens=100).key
    late = datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
    caller = authenticator.authenticate(f"Bearer {key}", late)
    authenticator.record_usage(caller, input_tokens=60, output_tokens=30)
    caller = authenticator.authenticate(f"Bearer {key}", late)  # 90 of 100: still allowed
    authenticator.record_usage(caller, input_tokens=5, output_tokens=5)

    with pytest.raises(QuotaExceeded) as refused:
        authenticator.authenticate(f"Bearer {key}", late + timedelta(minutes=30, seconds=0.5))

    assert refused.value.status == 429
    assert refused.value.reason is AuthFailure.QUOTA_EXCEEDED
    assert refused.value.retry_after_seconds == 30 * 60  # rounded up, never early
    assert refused.value.www_authenticate is None
    next_day = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    assert authenticator.authenticate(f"Bearer {key}", next_day).usage_day == "2026-03-15"


def test_usage_is_recorded_per_key_per_utc_day(
    dynamodb: Any, table: str, authenticator: Authenticator
) -> None:
    key = create_key(dynamodb, table, "counted", NOON).key
    for _ in range(3):
        caller = authenticator.authenticate(f"Bearer {key}", NOON)
        authenticator.record_usage(caller, input_tokens=40, output_tokens=2)

    def counted(now: datetime) -> tuple[int, int]:
        (listing,) = [
            listing for listing in list_keys(dynamodb, table, now) if listing.name == "counted"
        ]
        return listing.requests_today, listing.tokens_today

    assert counted(NOON) == (3, 126)
    assert counted(NOON + timedelta(days=1)) == (0, 0)


def test_the_command_lists_and_revokes_by_name(
    moto_url: str, table: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in aws_env(moto_url, region=REGION).items():
        monkeypatch.setenv(name, value)
    assert api_keys_main(["create", "--table", table, "--name", "ci", "--daily-tokens", "5"]) == 0
    key = capsys.readouterr().out.splitlines()[-1]

    assert api_keys_main(["revoke", "--table", table, "--name", "ci"]) == 0
    assert api_keys_main(["revoke", "--table", table, "--name", "ci"]) == 1
    assert api_keys_main(["list", "--table", table]) == 0

    output = capsys.readouterr()
    (row,) = [line for line in output.out.splitlines() if line.startswith("ci ")]
    assert row.split()[2] == "revoked"
    assert "no live key is named 'ci'" in output.err
    assert key not in output.out + output.err


def test_a_name_has_one_live_key(dynamodb: Any, table: str, authenticator: Authenticator) -> None:
    old = create_key(dynamodb, table, "rotated", NOON).key
    with pytest.raises(KeyStoreError, match="revoke it first"):
        create_key(dynamodb, table, "rotated", NOON)

    revoke_key(dynamodb, table, "rotated", NOON)
    new = create_key(dynamodb, table, "rotated", NOON).key

    assert authenticator.authenticate(f"Bearer {new}", NOON).label == "rotated"
    assert refusal(authenticator, f"Bearer {old}", NOON).reason is AuthFailure.REVOKED


def test_nothing_logs_the_key(
    dynamodb: Any, table: str, authenticator: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    key = create_key(dynamodb, table, "quiet", NOON, daily_tokens=1).key
    with caplog.at_level(logging.DEBUG):
        caller = authenticator.authenticate(f"Bearer {key}", NOON)
        authenticator.record_usage(caller, input_tokens=1, output_tokens=1)
        refusal(authenticator, f"Bearer {key}")

    assert caplog.records  # botocore logs its requests at DEBUG: the check sees real lines
    assert key not in caplog.text
