"""Each request's EMF lines: real handlers, the fake TGI endpoint, the log checked by the spec.

Both front doors: the buffered handler on Function URL events, and the streaming door (the
ASGI app behind the Lambda Web Adapter, llm_app.http.web) over HTTP, whose lines are written when
the stream ends."""

from __future__ import annotations

import json

import pytest

from llm_app.http.web import FunctionApp
from llm_app.runtime import metrics
from tests.support.documents import FACT, QUESTION, answer_like_a_reader
from tests.support.emf import dimension_sets, emf_problems, emf_records, metric_values
from tests.support.events import function_url_event, response_json
from tests.support.web import SseReader, forwarded, open_stream, serving, text_of


def logged_records(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    records = emf_records(capsys.readouterr().out)
    assert records, "the request logged no EMF line"
    for record in records:
        assert emf_problems(record) == [], record
    return records


def test_a_chat_answer_logs_tokens_latency_and_its_status_class(
    load_handler, fake_endpoint, lambda_context, capsys
):
    # The namespace and service dimension are read once per process, when llm_app.runtime.metrics is
    # first imported: the packaged-function tests check their values from the environment.
    chat = load_handler("chat.handler")
    capsys.readouterr()
    fake_endpoint.reply("Paris is the capital.")
    response = chat.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 200

    records = logged_records(capsys)
    [prompt_tokens] = metric_values(records, "InputTokens")
    assert prompt_tokens > 5  # the system prompt and the question, as the server counted them
    assert metric_values(records, "OutputTokens") == [4]
    [model_ms] = metric_values(records, "ModelLatency")
    [request_ms] = metric_values(records, "RequestLatency")
    assert 0 < model_ms <= request_ms
    assert metric_values(records, "ModelCalls") == [1]
    assert metric_values(records, "CutAnswers") == [0]
    assert metric_values(records, "Requests", status_class="2xx") == [1]
    assert metric_values(records, "Errors") == []
    # Low cardinality: one dimension set per metric, and only these dimensions.
    assert dimension_sets(records, "InputTokens") == [["service"]]
    assert dimension_sets(records, "Requests") == [["service", "status_class"]]
    # One namespace for every line.
    assert {d["Namespace"] for r in records for d in r["_aws"]["CloudWatchMetrics"]} == {
        metrics.NAMESPACE
    }


def test_an_answer_cut_at_max_new_tokens_is_counted(
    load_handler, fake_endpoint, lambda_context, capsys
):
    chat = load_handler("chat.handler", MAX_NEW_TOKENS="3")
    capsys.readouterr()
    fake_endpoint.reply("one two three four five six")
    response = chat.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 200

    records = logged_records(capsys)
    assert metric_values(records, "CutAnswers") == [1]
    assert metric_values(records, "OutputTokens") == [3]


def test_a_failed_request_counts_its_error_code_and_5xx(
    load_handler, fake_endpoint, lambda_context, capsys
):
    chat = load_handler("chat.handler", ENDPOINT_ENABLED="false")
    capsys.readouterr()
    response = chat.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 503

    records = logged_records(capsys)
    assert metric_values(records, "Requests", status_class="5xx") == [1]
    assert metric_values(records, "Errors", error_code="model_paused") == [1]
    assert dimension_sets(records, "Errors") == [["error_code", "service"]]
    assert metric_values(records, "ModelCalls") == []


def test_an_unexpected_exception_still_counts_as_a_5xx_internal_error(
    load_handler, fake_endpoint, lambda_context, capsys, monkeypatch
):
    # serve() answers every exception as JSON, so Lambda's own Errors metric never sees one.
    chat = load_handler("chat.handler")
    monkeypatch.setattr(chat, "chat", lambda *args: 1 / 0)
    capsys.readouterr()
    response = chat.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 500

    records = logged_records(capsys)
    assert metric_values(records, "Errors", error_code="internal_error") == [1]
    assert metric_values(records, "Requests", status_class="5xx") == [1]


def test_qa_logs_every_model_call_and_the_chunks(
    load_handler, fake_endpoint, lambda_context, capsys
):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.respond_with(answer_like_a_reader)
    capsys.readouterr()
    body = {"question": QUESTION, "documents": [FACT], "chain_type": "map_reduce"}
    response = qa.handler(function_url_event(json.dumps(body)), lambda_context)
    assert response["statusCode"] == 200, response["body"]

    records = logged_records(capsys)
    calls = len(fake_endpoint.invocations)
    assert calls == 2  # map, then combine
    # Each call's latency, not only the last one's.
    assert len(metric_values(records, "ModelLatency")) == calls
    assert metric_values(records, "ModelCalls") == [1] * calls
    assert len(metric_values(records, "OutputTokens")) == calls
    assert metric_values(records, "QaChunks") == [response_json(response)["chunks"]]


# ---------------------------------------------------------------------------------------------
# The streaming door: one set of lines per request, when its stream ends
# ---------------------------------------------------------------------------------------------
def streamed_chat(load_handler, body: str = '["What is the capital of France?"]') -> list:
    """One streamed chat request through door 2, as deployed with response_streaming."""
    chat = load_handler("chat.handler", AWS_LWA_INVOKE_MODE="response_stream")
    with serving(FunctionApp(chat.ROUTES, chat.SETTINGS, chat.logger)) as address:
        event = function_url_event(body, accept="text/event-stream")
        return SseReader(open_stream(address, event["body"], forwarded(event))).events()


def test_a_streamed_answer_logs_its_first_token_tokens_and_cut(load_handler, fake_endpoint, capsys):
    capsys.readouterr()
    fake_endpoint.stream_reply(["Paris", " is"], finish_reason="length")
    events = streamed_chat(load_handler)
    assert text_of(events) == "Paris is"

    records = logged_records(capsys)
    [first_token_ms] = metric_values(records, "FirstTokenLatency")
    [model_ms] = metric_values(records, "ModelLatency")
    [request_ms] = metric_values(records, "RequestLatency")
    assert 0 < first_token_ms <= model_ms <= request_ms
    assert metric_values(records, "ModelCalls") == [1]
    assert metric_values(records, "CutAnswers") == [1]  # the stream's finish_reason: length
    # The usage the last event reports is what was counted.
    usage = json.loads(events[-2][1])["usage"]
    assert metric_values(records, "InputTokens") == [usage["prompt_tokens"]]
    assert metric_values(records, "OutputTokens") == [usage["completion_tokens"]]
    assert metric_values(records, "HistoryTurns") == [0]
    assert metric_values(records, "Requests", status_class="2xx") == [1]
    assert dimension_sets(records, "FirstTokenLatency") == [["service"]]


def test_a_stream_that_fails_after_its_first_byte_counts_the_error(
    load_handler, fake_endpoint, capsys
):
    capsys.readouterr()
    fake_endpoint.stream_reply(["Paris", " is", " nice."], fail_after=1)
    events = streamed_chat(load_handler)
    assert json.loads(events[-1][1])["error"]["code"] == "model_error"

    records = logged_records(capsys)
    # The status was sent with the first byte; the error is the stream's last event.
    assert metric_values(records, "Requests", status_class="2xx") == [1]
    assert metric_values(records, "Errors", error_code="model_error") == [1]
    assert metric_values(records, "CutAnswers") == [0]
    assert len(metric_values(records, "FirstTokenLatency")) == 1


def test_the_buffered_door_reads_a_requested_stream_whole_so_no_first_token(
    load_handler, fake_endpoint, lambda_context, capsys
):
    chat = load_handler("chat.handler", AWS_LWA_INVOKE_MODE="buffered")
    capsys.readouterr()
    fake_endpoint.reply("Paris is the capital.")
    event = function_url_event('["What is the capital of France?"]', accept="text/event-stream")
    response = chat.handler(event, lambda_context)
    assert response["statusCode"] == 200

    records = logged_records(capsys)
    assert metric_values(records, "FirstTokenLatency") == []
    assert metric_values(records, "ModelCalls") == [1]


def test_the_first_request_of_a_container_is_its_cold_start(
    load_handler, fake_endpoint, lambda_context, capsys
):
    chat = load_handler("chat.handler")
    metrics._cold_start = True  # a fresh container (the module outlives handler imports)
    capsys.readouterr()
    for _ in range(2):
        chat.handler(function_url_event(), lambda_context)
    assert metric_values(logged_records(capsys), "ColdStarts") == [1, 0]


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"_aws": {"CloudWatchMetrics": []}}, "Timestamp"),
        ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
          "Metrics": [{"Name": "Calls", "Unit": "Count"}]}]}}, "no numeric value"),
        ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [
          ["service"]], "Metrics": [{"Name": "Calls"}]}]}, "Calls": 1}, "dimension 'service'"),
        ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
          "Metrics": [{"Name": "Calls", "Unit": "Calls"}]}]}, "Calls": 1}, "unit 'Calls'"),
        ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [],
          "Metrics": [{"Name": f"M{i}"} for i in range(101)]}]}, **{f"M{i}": 1 for i in
          range(101)}}, "over 100"),
        ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [
          [f"D{i}" for i in range(31)]], "Metrics": [{"Name": "Calls"}]}]}, "Calls": 1,
          **{f"D{i}": "x" for i in range(31)}}, "over 30"),
    ],
)  # fmt: skip
def test_the_emf_check_rejects_what_the_spec_forbids(broken: dict, problem: str) -> None:
    assert any(problem in p for p in emf_problems(broken)), emf_problems(broken)
