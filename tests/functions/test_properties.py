"""Property: whatever arrives, the handlers answer a well-formed HTTP response and never raise."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import function_url_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

# Bodies a confused client might send: arbitrary bytes, arbitrary JSON, and near-misses of the
# contract (wrong types in the right places), which exercise validation rather than JSON parsing.
near_misses = st.one_of(
    st.lists(json_values, min_size=0, max_size=3),
    st.fixed_dictionaries({"query": json_values}),
    st.fixed_dictionaries({"question": json_values, "documents": json_values}),
    st.builds(lambda q, d: [q, d], st.text(max_size=5), json_values),
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_misses.map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(params=["chat.handler", "qa.handler"])
def function(request, load_handler, fake_endpoint):
    # Every call that reaches the model is answered instantly.
    return load_handler(request.param)


def assert_well_formed(response: object) -> None:
    assert isinstance(response, dict)
    assert isinstance(response["statusCode"], int)
    assert response["headers"]["content-type"] == "application/json"
    payload = json.loads(response["body"])
    if response["statusCode"] == 200:
        assert isinstance(payload["answer"], str)
    else:
        assert 400 <= response["statusCode"] < 500, payload
        assert isinstance(payload["error"]["code"], str)
        assert isinstance(payload["error"]["message"], str)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, encode=st.booleans(), method=st.sampled_from(["POST", "GET", "DELETE"]))
def test_any_body_gets_a_well_formed_response(function, lambda_context, body, encode, method):
    event = function_url_event(body, base64_body=encode)
    event["requestContext"]["http"]["method"] = method
    assert_well_formed(function.handler(event, lambda_context))


malformed_events = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["requestContext", "body", "isBase64Encoded", "queryStringParameters"]),
        json_values,
    ),
    st.builds(
        lambda http, body, flag: {
            "requestContext": {"http": http},
            "body": body,
            "isBase64Encoded": flag,
        },
        json_values,
        json_values,
        json_values,
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=malformed_events)
def test_malformed_events_get_4xx_never_an_exception(function, lambda_context, event):
    assert_well_formed(function.handler(event, lambda_context))
