"""endpoint_enabled = false: both functions answer 503 model_paused without calling SageMaker."""

from __future__ import annotations

import pytest

from llm_app.config import ConfigError
from tests.support.environment import ENDPOINT_NAME
from tests.support.events import function_url_event, response_json


@pytest.mark.parametrize(
    ("module", "body"),
    [
        ("chat.handler", '["What is the capital of France?"]'),
        ("qa.handler", '["What is the capital?", ["France\'s capital is Paris."]]'),
    ],
)
def test_paused_endpoint_answers_503_with_how_to_resume(
    load_handler, fake_endpoint, lambda_context, module: str, body: str
) -> None:
    function = load_handler(module, ENDPOINT_ENABLED="false")
    response = function.handler(function_url_event(body), lambda_context)
    assert response["statusCode"] == 503
    error = response_json(response)["error"]
    assert error["code"] == "model_paused"
    assert f"'{ENDPOINT_NAME}' is paused" in error["message"]
    assert "set endpoint_enabled = true and run terraform apply" in error["message"]
    assert fake_endpoint.invocations == []


def test_paused_chat_still_validates_the_request_first(
    load_handler, fake_endpoint, lambda_context
) -> None:
    chat = load_handler("chat.handler", ENDPOINT_ENABLED="false")
    response = chat.handler(function_url_event("[]"), lambda_context)
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "invalid_request"


def test_enabled_endpoint_is_called(load_handler, fake_endpoint, lambda_context) -> None:
    chat = load_handler("chat.handler", ENDPOINT_ENABLED="true")
    response = chat.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 200
    assert len(fake_endpoint.invocations) == 1


def test_a_bad_endpoint_enabled_value_fails_the_import(load_handler) -> None:
    with pytest.raises(ConfigError, match="ENDPOINT_ENABLED='maybe'"):
        load_handler("chat.handler", ENDPOINT_ENABLED="maybe")
