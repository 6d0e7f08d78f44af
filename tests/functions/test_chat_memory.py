"""Conversation memory: DynamoDB (moto server over real HTTP) behind the chat function."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from chat.history import DynamoDBTurnHistory
from tests.support.environment import create_history_table
from tests.support.events import function_url_event, response_json
from tools.devstack import MotoServer
from tools.model_server.backend import SageMakerError

TABLE = "test-chat-history"
SESSION = "session-0001"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with MotoServer() as moto:
        yield moto.url


@pytest.fixture
def dynamodb(moto_url: str):
    """A fresh table with the schema Terraform creates (modules' chat history table)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_history_table(client, TABLE)
    yield client
    client.delete_table(TableName=TABLE)


@pytest.fixture
def load_chat(load_handler, moto_url, dynamodb):
    """A fresh chat handler on the test table, with further settings."""

    def load(**settings: str):
        return load_handler(
            "chat.handler", HISTORY_TABLE_NAME=TABLE, AWS_ENDPOINT_URL_DYNAMODB=moto_url, **settings
        )

    return load


@pytest.fixture
def chat(load_chat):
    return load_chat()


def ask(chat, lambda_context, *arguments: str) -> dict:
    response = chat.handler(function_url_event(json.dumps(list(arguments))), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)


def turns(dynamodb, session_id: str) -> list[dict]:
    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="session_id = :s",
        ExpressionAttributeValues={":s": {"S": session_id}},
    )["Items"]
    return sorted(items, key=lambda item: item["turn_id"]["S"])


def test_second_turn_sends_the_first_exchange_to_the_model(
    chat, fake_endpoint, dynamodb, lambda_context
):
    fake_endpoint.reply("Paris.", "About 2.1 million.")
    first = ask(chat, lambda_context, "What is the capital of France?")
    session_id = first["session_id"]
    assert first["memory"] == "enabled"
    assert len(session_id) == 36  # a new UUID, returned so curl users can continue

    second = ask(chat, lambda_context, "How many people live there?", session_id)

    assert second == {
        "answer": "About 2.1 million.",
        "session_id": session_id,
        "memory": "enabled",
    }
    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "How many people live there?"},
    ]
    stored = turns(dynamodb, session_id)
    assert [(t["question"]["S"], t["answer"]["S"]) for t in stored] == [
        ("What is the capital of France?", "Paris."),
        ("How many people live there?", "About 2.1 million."),
    ]


def test_object_form_names_the_session(chat, fake_endpoint, lambda_context):
    body = json.dumps({"query": "Hi", "session_id": SESSION})
    response = chat.handler(function_url_event(body), lambda_context)
    assert response_json(response)["session_id"] == SESSION


def test_items_expire_after_the_ttl(load_chat, dynamodb, fake_endpoint, lambda_context):
    chat = load_chat(HISTORY_TTL_DAYS="3")
    before = int(time.time())
    ask(chat, lambda_context, "Hi", SESSION)
    [item] = turns(dynamodb, SESSION)
    expires_at = int(item["expires_at"]["N"])
    assert before + 3 * 86_400 <= expires_at <= int(time.time()) + 3 * 86_400


def test_expired_turns_never_reach_the_prompt_before_dynamodb_deletes_them(dynamodb):
    day = 86_400
    now = [1_800_000_000.0]
    history = DynamoDBTurnHistory(
        dynamodb, TABLE, SESSION, ttl_days=7, max_turns=20, clock=lambda: now[0]
    )
    history.add_messages([HumanMessage("old"), AIMessage("a1")])
    now[0] += 6 * day
    history.add_messages([HumanMessage("recent"), AIMessage("a2")])
    now[0] += 2 * day  # "old" is 8 days old: expired, though still stored
    assert len(turns(dynamodb, SESSION)) == 2
    assert [m.text for m in history.messages] == ["recent", "a2"]


def test_a_failed_model_call_leaves_history_unchanged(
    chat, fake_endpoint, dynamodb, lambda_context
):
    ask(chat, lambda_context, "First", SESSION)
    fake_endpoint.reply(SageMakerError("ModelNotReadyException", 429, "loading"))
    response = chat.handler(function_url_event(json.dumps(["Second", SESSION])), lambda_context)
    assert response["statusCode"] == 503
    assert [t["question"]["S"] for t in turns(dynamodb, SESSION)] == ["First"]


def test_concurrent_writers_on_one_session_keep_both_turns(dynamodb):
    """Two requests read the same history, then both save: neither turn may be lost."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def request(question: str) -> None:
        try:
            history = DynamoDBTurnHistory(dynamodb, TABLE, SESSION, ttl_days=7, max_turns=20)
            assert history.messages == []
            barrier.wait(timeout=10)  # both have read before either writes
            history.add_messages([HumanMessage(question), AIMessage(question.upper())])
        except BaseException as error:  # surfaced below; a thread cannot fail the test
            errors.append(error)

    threads = [threading.Thread(target=request, args=(q,)) for q in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(t["question"]["S"] for t in turns(dynamodb, SESSION)) == ["one", "two"]


def test_history_is_trimmed_to_the_input_budget_oldest_first(
    load_chat, dynamodb, fake_endpoint, lambda_context
):
    chat = load_chat(MAX_INPUT_TOKENS="400")
    long_answer = "x" * 300  # about 100 estimated tokens a turn
    for index in range(6):
        fake_endpoint.reply(f"{long_answer} {index}")
        ask(chat, lambda_context, f"question {index}", SESSION)

    ask(chat, lambda_context, "latest", SESSION)

    sent = fake_endpoint.last_request["messages"]
    questions = [m["content"] for m in sent if m["role"] == "user"]
    assert questions[-1] == "latest"
    kept = questions[:-1]
    assert 1 <= len(kept) < 6
    assert kept == [f"question {i}" for i in range(6 - len(kept), 6)]  # newest kept, in order
    assert sent[0]["role"] == "system"
    assert sent[1]["role"] == "user"  # never starts on a dangling answer


def test_delete_clears_the_session(chat, fake_endpoint, dynamodb, lambda_context):
    ask(chat, lambda_context, "First", SESSION)
    ask(chat, lambda_context, "Second", SESSION)
    response = chat.handler(
        function_url_event(None, method="DELETE", query={"session_id": SESSION}), lambda_context
    )
    assert response["statusCode"] == 200
    assert response_json(response) == {"session_id": SESSION, "deleted_turns": 2}
    assert turns(dynamodb, SESSION) == []


@pytest.mark.parametrize("session_id", ["short", "has space in it", "x" * 129, "semi;colon!", 42])
def test_bad_session_ids_are_400(chat, fake_endpoint, lambda_context, session_id):
    response = chat.handler(function_url_event(json.dumps(["Hi", session_id])), lambda_context)
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "invalid_session_id"
    assert fake_endpoint.invocations == []


def test_history_store_outage_is_503_before_the_model_is_called(
    load_handler, moto_url, fake_endpoint, lambda_context
):
    chat = load_handler(
        "chat.handler", HISTORY_TABLE_NAME="no-such-table", AWS_ENDPOINT_URL_DYNAMODB=moto_url
    )
    response = chat.handler(function_url_event(json.dumps(["Hi", SESSION])), lambda_context)
    assert response["statusCode"] == 503
    assert response_json(response)["error"]["code"] == "history_unavailable"
    assert fake_endpoint.invocations == []


def test_history_object_keeps_langchain_semantics(dynamodb):
    history = DynamoDBTurnHistory(dynamodb, TABLE, SESSION, ttl_days=7, max_turns=2)
    history.add_messages([HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2"), AIMessage("a2")])
    history.add_messages([HumanMessage("q3"), AIMessage("a3")])
    assert [m.text for m in history.messages] == ["q2", "a2", "q3", "a3"]
    with pytest.raises(ValueError, match="pairs"):
        history.add_messages([HumanMessage("lonely")])
    history.clear()
    assert history.messages == []
