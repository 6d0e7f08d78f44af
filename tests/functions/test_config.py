import pytest

from llm_app.config import DEFAULT_SYSTEM_PROMPT, ConfigError, Settings


def test_defaults_are_the_seeds():
    settings = Settings.from_env({"ENDPOINT_NAME": "e"})
    assert (settings.max_new_tokens, settings.temperature, settings.top_p) == (700, 0.5, 0.9)
    assert settings.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert settings.history_table_name == ""
    assert settings.generation_kwargs == {"max_tokens": 700, "temperature": 0.5, "top_p": 0.9}


def test_values_are_parsed_by_type():
    settings = Settings.from_env(
        {"ENDPOINT_NAME": "e", "MAX_NEW_TOKENS": "64", "TOP_P": "0.5", "LOG_PROMPTS": "true"}
    )
    assert (settings.max_new_tokens, settings.top_p, settings.log_prompts) == (64, 0.5, True)


def test_temperature_zero_asks_for_greedy_decoding_without_a_warper():
    # The Messages API decodes greedily at exactly 0, unless a warper such as top_p is set.
    settings = Settings.from_env({"ENDPOINT_NAME": "e", "TEMPERATURE": "0", "TOP_P": "0.9"})
    assert settings.generation_kwargs == {"max_tokens": 700, "temperature": 0.0}


def test_empty_optional_values_fall_back_to_defaults():
    assert Settings.from_env({"ENDPOINT_NAME": "e", "MAX_NEW_TOKENS": ""}).max_new_tokens == 700


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ENDPOINT_NAME is not set"),
        (
            {"ENDPOINT_NAME": "e", "MAX_NEW_TOKENS": "many"},
            "MAX_NEW_TOKENS='many' is not a valid int",
        ),
        ({"ENDPOINT_NAME": "e", "TOP_P": "1"}, "TOP_P must be between 0 and 1"),
        ({"ENDPOINT_NAME": "e", "TEMPERATURE": "-0.1"}, "TEMPERATURE must be from 0"),
        ({"ENDPOINT_NAME": "e", "LOG_PROMPTS": "maybe"}, "LOG_PROMPTS='maybe'"),
        ({"ENDPOINT_NAME": "e", "MAX_ATTEMPTS": "9"}, "MAX_ATTEMPTS must be between 1 and 5"),
        (
            {"ENDPOINT_NAME": "e", "URL_AUTHORIZATION_TYPE": "PUBLIC"},
            "URL_AUTHORIZATION_TYPE must be AWS_IAM or NONE",
        ),
        (
            {"ENDPOINT_NAME": "e", "CHAT_SESSION_SCOPE": "session"},
            "CHAT_SESSION_SCOPE must be caller or role",
        ),
    ],
)
def test_bad_environment_fails_with_a_message_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
