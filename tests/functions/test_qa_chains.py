"""The QA chain types over long documents: real HTTP to the fake TGI endpoint, answering by prompt.

The scripted backend answers each prompt by what it holds, as a model reading it would: the
chunk with the planted fact yields the fact, the others nothing; combine and refine prompts
carry the fact on when an earlier answer holds it.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.support.documents import FACT, QUESTION, answer_like_a_reader, kind_of, long_document
from tests.support.events import function_url_event, lambda_context, response_json
from tests.support.fake_endpoint import FakeEndpoint


@pytest.fixture
def in_flight(fake_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most requests the endpoint was handling at once (a one-item list, updated live).

    Each request is held briefly at the HTTP boundary, before the model, so overlapping calls
    really overlap.
    """
    server = fake_endpoint.server
    original = server.invoke
    lock = threading.Lock()
    current = [0]
    most = [0]

    def counting_invoke(*args, **kwargs):
        with lock:
            current[0] += 1
            most[0] = max(most[0], current[0])
        try:
            time.sleep(0.02)
            return original(*args, **kwargs)
        finally:
            with lock:
                current[0] -= 1

    monkeypatch.setattr(server, "invoke", counting_invoke)
    return most


def ask(qa, body: object, context=None) -> dict:
    return qa.handler(function_url_event(json.dumps(body)), context or lambda_context())


def prompts(fake_endpoint: FakeEndpoint) -> list[str]:
    return [request["messages"][0]["content"] for request in fake_endpoint.invocations]


def test_a_100_kb_document_is_answered_by_map_reduce_within_the_concurrency_bound(
    load_handler, fake_endpoint, in_flight, capsys
):
    qa = load_handler("qa.handler", QA_MAP_CONCURRENCY="3")
    fake_endpoint.backend.respond_with(answer_like_a_reader)
    document = long_document()
    assert len(document.encode()) >= 100_000

    response = ask(qa, [QUESTION, [document]])

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["chain_type"] == "map_reduce"
    assert "4172" in body["answer"]
    kinds = [kind_of(p) for p in prompts(fake_endpoint)]
    assert kinds.count("map") == body["chunks"] > 20
    assert kinds.count("combine") == 1  # short partial answers fit one combine prompt
    assert len(kinds) == body["chunks"] + 1
    # The fact sits in one chunk (two, where the chunks' overlap repeats it).
    assert 1 <= sum("4172" in p for p in prompts(fake_endpoint) if kind_of(p) == "map") <= 2
    assert in_flight[0] == 3
    # The request's log line counts the work and carries none of the document.
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines() if '"message":"request"' in x]
    assert (line["chain_type"], line["chunks"], line["model_calls"]) == (
        "map_reduce",
        body["chunks"],
        len(kinds),
    )
    assert "committee" not in out
    assert "4172" not in out


def test_partial_answers_too_long_for_one_prompt_are_combined_in_rounds(
    load_handler, fake_endpoint
):
    qa = load_handler("qa.handler")
    notes = " ".join(["The committee discussed the harvest and the roads at length."] * 25)

    def verbose_reader(prompt: str) -> str:
        if kind_of(prompt) == "map":
            return FACT if "4172" in prompt else notes
        return answer_like_a_reader(prompt)

    fake_endpoint.backend.respond_with(verbose_reader)

    response = ask(qa, [QUESTION, [long_document()]])

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert "4172" in body["answer"]
    combines = [p for p in prompts(fake_endpoint) if kind_of(p) == "combine"]
    # About two 1.6 KB notes fit a combine prompt: the first round cannot be one call.
    assert len(combines) > body["chunks"] // 3
    assert len(prompts(fake_endpoint)) == body["chunks"] + len(combines)
    # Every prompt stayed inside the model's input (the server would refuse one that did not).
    assert all(fake_endpoint.backend.count_tokens(c) < 1348 for c in combines)


def test_refine_walks_the_chunks_one_call_at_a_time(load_handler, fake_endpoint, in_flight):
    qa = load_handler("qa.handler", QA_MAP_CONCURRENCY="4")

    def refining_reader(prompt: str) -> str:
        if "4172" in prompt:
            return FACT
        return "I don't know."

    fake_endpoint.backend.respond_with(refining_reader)

    response = ask(
        qa,
        {"question": QUESTION, "documents": [long_document(40_000)], "chain_type": "refine"},
    )

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["chain_type"] == "refine"
    assert "4172" in body["answer"]
    kinds = [kind_of(p) for p in prompts(fake_endpoint)]
    assert kinds[0] == "stuff"  # the first chunk gets the seed's prompt
    assert kinds[1:] == ["refine"] * (body["chunks"] - 1)
    assert in_flight[0] == 1
    # The fact, once found, is carried through every later step as the answer so far.
    found = next(i for i, p in enumerate(prompts(fake_endpoint)) if "4172" in p)
    assert all("4172" in p for p in prompts(fake_endpoint)[found:])


def test_the_seeds_request_sends_exactly_one_stuff_request(load_handler, fake_endpoint):
    qa = load_handler("qa.handler")
    response = ask(qa, ["How long was Elizabeth hospitalized?"])
    assert response_json(response)["chain_type"] == "stuff"
    assert [kind_of(p) for p in prompts(fake_endpoint)] == ["stuff"]


def test_map_reduce_may_be_asked_for_on_a_short_document(load_handler, fake_endpoint):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.respond_with(answer_like_a_reader)
    response = ask(qa, {"question": QUESTION, "documents": [FACT], "chain_type": "map_reduce"})
    body = response_json(response)
    assert (body["chain_type"], body["chunks"]) == ("map_reduce", 1)
    assert [kind_of(p) for p in prompts(fake_endpoint)] == ["map", "combine"]


def test_an_unknown_chain_type_is_400(load_handler, fake_endpoint):
    qa = load_handler("qa.handler")
    response = ask(qa, {"question": QUESTION, "chain_type": "summarize"})
    assert response["statusCode"] == 400
    assert "'chain_type' must be one of 'stuff', 'map_reduce', 'refine'" in response["body"]
    assert fake_endpoint.invocations == []


def test_more_chunks_than_the_limit_is_413_naming_it(load_handler, fake_endpoint):
    qa = load_handler("qa.handler", QA_MAX_CHUNKS="10")
    response = ask(qa, [QUESTION, [long_document()]])
    assert response["statusCode"] == 413
    error = response_json(response)["error"]
    assert error["code"] == "request_too_large"
    assert "the limit is 10 (QA_MAX_CHUNKS)" in error["message"]
    assert fake_endpoint.invocations == []


def test_more_document_bytes_than_the_limit_is_413_naming_it(load_handler, fake_endpoint):
    qa = load_handler("qa.handler", QA_MAX_DOCUMENT_BYTES="50000")
    response = ask(qa, [QUESTION, [long_document(30_000), long_document(30_000)]])
    assert response["statusCode"] == 413
    error = response_json(response)["error"]
    assert "the limit is 50000 (QA_MAX_DOCUMENT_BYTES)" in error["message"]
    assert fake_endpoint.invocations == []


def test_with_no_time_left_the_answer_is_504_before_any_model_call(load_handler, fake_endpoint):
    qa = load_handler("qa.handler", QA_DEADLINE_RESERVE_SECONDS="5")
    response = ask(qa, [QUESTION, [long_document()]], lambda_context(seconds_left=4))
    assert response["statusCode"] == 504
    error = response_json(response)["error"]
    assert error["code"] == "deadline_exceeded"
    assert "function_timeout" in error["message"]
    assert fake_endpoint.invocations == []


def test_a_document_that_cannot_finish_in_time_is_504_and_the_model_is_not_called_again(
    load_handler, fake_endpoint
):
    qa = load_handler("qa.handler", QA_DEADLINE_RESERVE_SECONDS="1", QA_MAP_CONCURRENCY="2")

    def slow_reader(prompt: str) -> str:
        time.sleep(0.3)
        return answer_like_a_reader(prompt)

    fake_endpoint.backend.respond_with(slow_reader)
    started = time.monotonic()

    response = ask(qa, [QUESTION, [long_document()]], lambda_context(seconds_left=2.5))

    answered_after = time.monotonic() - started
    assert response["statusCode"] == 504
    assert response_json(response)["error"]["code"] == "deadline_exceeded"
    assert answered_after < 2.5  # before the Lambda deadline
    calls_when_answered = len(fake_endpoint.invocations)
    assert 0 < calls_when_answered < 10
    time.sleep(1.5)  # the calls in flight finish; no new one starts
    assert len(fake_endpoint.invocations) == calls_when_answered
