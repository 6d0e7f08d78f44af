"""Bearer sign-in at the edge of both functions, through both doors, on a NONE URL.

Keys are made by tools.api_keys in moto's DynamoDB; tokens are signed here and checked against
the JWKS a loopback issuer serves (tests/support/tokens.py). A refusal must reach neither the
model (the fake endpoint records every call) nor the log (the captured output is searched for
the credential). The daily quota crosses UTC midnight on the handler's clock (`SIGN_IN.clock`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llm_app.http.web import FunctionApp
from tests.support.canned_http import Canned, answering
from tests.support.events import function_url_event, lambda_context
from tests.support.tokens import AUDIENCE, Issuer, claims, refused_tokens, token
from tests.support.web import adapter_headers, function_url_front, send, serving
from tools.api_keys.store import create_key, revoke_key
from tools.function_urls.cors import Cors

CHAT_BODY = '["What is the capital of France?"]'
QA_BODY = '["What is the capital?", ["Paris is the capital of France."]]'
BODIES = {"chat.handler": CHAT_BODY, "qa.handler": QA_BODY}
NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
BUFFERED, STREAMING = "door1", "door2"


@pytest.fixture
def signed(load_handler, moto_url: str, keys_table: str, issuer: Issuer):
    """Load a function with both bearer modes on, as Terraform configures a NONE URL."""

    def load(module: str, **env: str) -> Any:
        bearer_modes = {
            "URL_AUTHORIZATION_TYPE": "NONE",
            "API_KEYS_TABLE_NAME": keys_table,
            "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
            "JWT_ISSUER": issuer.url,
            "JWT_AUDIENCES": AUDIENCE,
        }
        return load_handler(module, **{**bearer_modes, **env})

    return load


def new_key(dynamodb: Any, table: str, now: datetime = NOON, **options: Any) -> str:
    name = f"key-{time.monotonic_ns()}"
    return create_key(dynamodb, table, name, now, **options).key


def call(
    function: Any, body: str | None, authorization: str | None, door: str = BUFFERED
) -> dict[str, Any]:
    """One request through `door`, answered as a Function URL's response (body as JSON)."""
    event = function_url_event(body, caller=None, authorization=authorization)
    if door == BUFFERED:
        response = function.handler(event, lambda_context())
        return {**response, "body": json.loads(response["body"])}
    headers = {
        **{k: v for k, v in event["headers"].items() if k not in ("host", "content-length")},
        **adapter_headers(event),
    }
    app = FunctionApp(function.ROUTES, function.SETTINGS, function.logger, function.SIGN_IN)
    with serving(app) as address:
        reply = send(address, event["body"], headers)
    return {"statusCode": reply.status, "headers": reply.headers, "body": reply.json()}


@pytest.mark.parametrize("door", [BUFFERED, STREAMING])
@pytest.mark.parametrize("module", sorted(BODIES))
def test_a_key_and_a_token_are_answered_by_both_functions(
    signed, fake_endpoint, keys_dynamodb, keys_table, issuer, signing_keys, capsys, module, door
):
    function = signed(module)
    key = new_key(keys_dynamodb, keys_table, datetime.now(UTC))
    jwt = token(claims(issuer), signing_keys["rsa"])

    by_key = call(function, BODIES[module], f"Bearer {key}", door)
    by_token = call(function, BODIES[module], f"bearer {jwt}", door)

    assert (by_key["statusCode"], by_token["statusCode"]) == (200, 200), (by_key, by_token)
    assert by_key["body"]["answer"]
    assert by_token["body"]["answer"]
    logged = capsys.readouterr().out
    assert key not in logged
    assert jwt not in logged
    requests = [json.loads(line) for line in logged.splitlines() if '"message":"request"' in line]
    assert [(line["sign_in"], line["caller"]) for line in requests] == [
        ("api_key", requests[0]["caller"]),
        ("jwt", "user-1"),
    ]
    assert requests[0]["caller"].startswith("key-")  # the key's name, never the key


def refused_credentials(dynamodb: Any, table: str, issuer: Issuer, keys: dict) -> dict:
    """The Authorization header of each refusal, and the reason the metrics count."""
    revoked_name = f"revoked-{time.monotonic_ns()}"
    revoked = create_key(dynamodb, table, revoked_name, NOON)
    revoke_key(dynamodb, table, revoked_name, NOON)
    now = int(time.time())
    tokens = refused_tokens(issuer, keys)
    return {
        "missing": (None, "missing"),
        "malformed": ("Basic dXNlcjpwYXNz", "malformed"),
        "wrong key": ("Bearer llmk_" + "A" * 43, "unknown_key"),
        "revoked key": (f"Bearer {revoked.key}", "revoked"),
        "expired key": (
            f"Bearer {new_key(dynamodb, table, NOON - timedelta(days=3), expires_days=1)}",
            "expired",
        ),
        "expired token": (
            f"Bearer {token(claims(issuer, exp=now - 120), keys['rsa'])}",
            "expired",
        ),
        "token not yet valid": (
            f"Bearer {token(claims(issuer, nbf=now + 120), keys['rsa'])}",
            "not_yet_valid",
        ),
        **{
            case: (f"Bearer {tokens[case][0]}", tokens[case][1].value)
            for case in (
                "other issuer",
                "other audience",
                "alg none",
                "HS256",
                "another key, same kid",
                "tampered payload",
            )
        },
    }


REFUSALS = (
    "missing", "malformed", "wrong key", "revoked key", "expired key", "expired token",
    "token not yet valid", "other issuer", "other audience", "alg none", "HS256",
    "another key, same kid", "tampered payload",
)  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_is_a_401_before_the_model_and_never_logged(
    signed, fake_endpoint, keys_dynamodb, keys_table, issuer, signing_keys, capsys, case
):
    authorization, reason = refused_credentials(keys_dynamodb, keys_table, issuer, signing_keys)[
        case
    ]
    chat = signed("chat.handler")

    response = call(chat, CHAT_BODY, authorization)

    assert response["statusCode"] == 401
    challenge = response["headers"]["www-authenticate"]
    assert challenge == ("Bearer" if case == "missing" else 'Bearer error="invalid_token"')
    assert response["body"]["error"]["code"] == "unauthorized"
    assert fake_endpoint.invocations == []
    logged = capsys.readouterr().out
    if authorization is not None:
        assert authorization.split()[-1] not in logged
    refusals = [json.loads(line) for line in logged.splitlines() if "SignInRefused" in line]
    assert [line["reason"] for line in refusals] == [reason]


def test_a_refusal_through_the_streaming_door(signed, fake_endpoint):
    response = call(signed("qa.handler"), QA_BODY, "Bearer llmk_" + "B" * 43, STREAMING)

    assert response["statusCode"] == 401
    assert response["headers"]["www-authenticate"] == 'Bearer error="invalid_token"'
    assert fake_endpoint.invocations == []


def test_a_key_over_its_daily_tokens_waits_for_midnight_utc(
    signed, fake_endpoint, keys_dynamodb, keys_table
):
    key = f"Bearer {new_key(keys_dynamodb, keys_table, daily_tokens=1)}"
    chat = signed("chat.handler")
    chat.SIGN_IN.clock = lambda: NOON

    first = call(chat, CHAT_BODY, key)
    over = call(chat, CHAT_BODY, key)
    chat.SIGN_IN.clock = lambda: NOON + timedelta(hours=12)
    next_day = call(chat, CHAT_BODY, key)

    assert first["statusCode"] == 200
    assert over["statusCode"] == 429
    assert over["body"]["error"]["code"] == "quota_exceeded"
    assert over["headers"]["retry-after"] == str(12 * 3600)
    assert next_day["statusCode"] == 200
    assert len(fake_endpoint.invocations) == 2


def test_two_keys_and_two_users_cannot_read_each_others_conversations(
    signed, memory, fake_endpoint, keys_dynamodb, keys_table, issuer, signing_keys
):
    chat = signed("chat.handler", **memory)
    alice = f"Bearer {new_key(keys_dynamodb, keys_table, datetime.now(UTC))}"
    bob = f"Bearer {new_key(keys_dynamodb, keys_table, datetime.now(UTC))}"
    carol = f"Bearer {token(claims(issuer, sub='carol'), signing_keys['rsa'])}"
    dave = f"Bearer {token(claims(issuer, sub='dave'), signing_keys['rsa'])}"
    fake_endpoint.reply("Paris.", "Paris.")
    session = "shared-session-id"
    asked = json.dumps(["What is the capital of France?", session])
    again = json.dumps(["And of Spain?", session])

    for owner, other in ((alice, bob), (carol, dave)):
        assert call(chat, asked, owner)["statusCode"] == 200
        assert call(chat, again, other)["statusCode"] == 200
        # The other caller's model call saw its own question only: no earlier turns.
        assert [m["role"] for m in fake_endpoint.last_request["messages"]] == ["system", "user"]
        assert call(chat, again, owner)["statusCode"] == 200
        assert [m["role"] for m in fake_endpoint.last_request["messages"]] == [
            "system", "user", "assistant", "user",
        ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# In a browser: a page of another origin signs in and reads the answer as it streams
# ---------------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The page's script: POST with a bearer, read Server-Sent Events from fetch's ReadableStream,
# and show each piece as it arrives.
PAGE = """<!doctype html><meta charset="utf-8"><pre id="answer"></pre><script>
async function ask(url, authorization) {
  const shown = document.getElementById("answer");
  shown.textContent = "";
  const response = await fetch(url, {
    method: "POST",
    headers: {authorization, "content-type": "application/json", accept: "text/event-stream"},
    body: JSON.stringify(["What is the capital of France?"]),
  });
  if (!response.ok) return `${response.status}`;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const {done, value} = await reader.read();
    if (done) return "done";
    buffered += decoder.decode(value, {stream: true});
    const events = buffered.split("\\n\\n");
    buffered = events.pop();
    for (const event of events) {
      const data = event.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const piece = JSON.parse(data).choices[0].delta.content;
      if (piece) shown.textContent += piece;
    }
  }
}
</script>"""


SHOWN = "shown => document.getElementById('answer').textContent === shown"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium: installed here under CI (make test's setup), else the test skips."""
    if not os.path.exists(CHROMIUM) and os.environ.get("CI") == "true" and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True)
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    return CHROMIUM


def test_a_page_of_another_origin_signs_in_and_shows_the_answer_piece_by_piece(
    chromium, signed, fake_endpoint, keys_dynamodb, keys_table, issuer, signing_keys, tmp_path
):
    from playwright.sync_api import sync_playwright

    chat = signed("chat.handler", AWS_LWA_INVOKE_MODE="response_stream")
    door = FunctionApp(chat.ROUTES, chat.SETTINGS, chat.logger, chat.SIGN_IN)
    key = new_key(keys_dynamodb, keys_table, datetime.now(UTC))
    jwt = token(claims(issuer), signing_keys["rsa"])
    pieces = ["Paris", " is", " the", " capital."]

    with (
        answering(lambda _path: Canned(200, "text/html", PAGE.encode())) as page_url,
        serving(function_url_front(door, browser_cors(page_url))) as address,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            for credential in (key, jwt):
                gate = fake_endpoint.stream_reply(pieces, gated=True)
                page.evaluate(
                    "([url, bearer]) => { window.asked = ask(url, bearer); }",
                    [f"http://{address}/", f"Bearer {credential}"],
                )
                for count in range(1, len(pieces) + 1):
                    # The page shows each piece before the next one exists.
                    shown = "".join(pieces[:count])
                    page.wait_for_function(
                        "shown => document.getElementById('answer').textContent === shown",
                        arg=shown,
                    )
                    assert gate.sent == count
                    gate.release()
                assert page.evaluate("() => window.asked") == "done"
            refused = page.evaluate(
                "([url]) => ask(url, 'Bearer llmk_' + 'C'.repeat(43))", [f"http://{address}/"]
            )
        finally:
            browser.close()

    assert refused == "401"  # a refusal the page can read: the URL's CORS headers are on it


def browser_cors(page_origin: str) -> Cors:
    """The URL's cors as a browser app's deployment sets url_cors (auth.tf requires these)."""
    return Cors(
        allow_origins=(page_origin,),
        allow_methods=("POST",),
        allow_headers=("authorization", "content-type"),
        expose_headers=("retry-after",),
    )


def openai_call(function: Any, path: str, body: str | None, authorization: str | None) -> dict:
    """One request to the chat URL's OpenAI-compatible `path`, as a Function URL event."""
    method = "GET" if body is None else "POST"
    event = function_url_event(
        body, method=method, caller=None, authorization=authorization, content_type=None
    )
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    response = function.handler(event, lambda_context())
    return {**response, "body": json.loads(response["body"])}


def test_the_openai_routes_take_a_key_and_a_token_and_refuse_in_openais_shape(
    signed, fake_endpoint, keys_dynamodb, keys_table, issuer, signing_keys
):
    function = signed("chat.handler")
    key = new_key(keys_dynamodb, keys_table, datetime.now(UTC))
    jwt = token(claims(issuer), signing_keys["rsa"])
    model = function.MODELS.ids[0]
    completion = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Capital of France?"}]}
    )

    for bearer in (key, jwt):
        models = openai_call(function, "/v1/models", None, f"Bearer {bearer}")
        answered = openai_call(function, "/v1/chat/completions", completion, f"Bearer {bearer}")
        assert (models["statusCode"], answered["statusCode"]) == (200, 200), answered
        assert answered["body"]["object"] == "chat.completion"
    invocations = len(fake_endpoint.invocations)

    refused = openai_call(function, "/v1/chat/completions", completion, "Bearer llmk_" + "C" * 43)

    assert refused["statusCode"] == 401
    assert refused["headers"]["www-authenticate"] == 'Bearer error="invalid_token"'
    assert refused["body"]["error"]["type"] == "authentication_error"
    assert refused["body"]["error"]["code"] == "invalid_api_key"
    assert len(fake_endpoint.invocations) == invocations
