"""Conversation memory: DynamoDB (moto server over real HTTP) behind the chat function."""

from __future__ import annotations

import json
import string
import threading
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from chat.history import DynamoDBTurnHistory
from tests.support.environment import HISTORY_TABLE
from tests.support.events import ALICE, BOB, function_url_event, response_json
from tools.lambda_sandbox.events import iam_authorizer
from tools.model_server.backend import SageMakerError

TABLE = HISTORY_TABLE
SESSION = "session-0001"


@pytest.fixture
def load_chat(load_handler, memory, dynamodb):
    """A fresh chat handler on the test table, with further settings."""

    def load(**settings: str):
        return load_handler("chat.handler", **memory, **settings)

    return load


@pytest.fixture
def chat(load_chat):
    return load_chat()


def ask(chat, lambda_context, *arguments: str, caller: dict | None = ALICE) -> dict:
    event = function_url_event(json.dumps(list(arguments)), caller=caller)
    response = chat.handler(event, lambda_context)
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)


def forget(chat, lambda_context, session_id: str, caller: dict | None = ALICE) -> dict:
    event = function_url_event(
        None, method="DELETE", query={"session_id": session_id}, caller=caller
    )
    return chat.handler(event, lambda_context)


def key(session_id: str, caller: dict | None = ALICE) -> str:
    """The partition key the function stores a caller's session under."""
    owner = "public" if caller is None else f"iam:{caller['accountId']}:{caller['userId']}"
    return f"{owner}#{session_id}"


def turns(dynamodb, session_id: str, caller: dict | None = ALICE) -> list[dict]:
    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="session_id = :s",
        ExpressionAttributeValues={":s": {"S": key(session_id, caller)}},
    )["Items"]
    return sorted(items, key=lambda item: item["turn_id"]["S"])


def all_items(dynamodb) -> list[dict]:
    return dynamodb.scan(TableName=TABLE)["Items"]


def test_second_turn_sends_the_first_exchange_to_the_model(
    chat, fake_endpoint, dynamodb, lambda_context
):
    fake_endpoint.reply("Paris.", "About 2.1 million.")
    first = ask(chat, lambda_context, "What is the capital of France?")
    session_id = first["session_id"]
    assert first["memory"] == "enabled"
    assert len(session_id) == 43  # 256 random bits, returned so curl users can continue

    second = ask(chat, lambda_context, "How many people live there?", session_id)

    assert second == {
        "answer": "About 2.1 million.",
        "session_id": session_id,
        "memory": "enabled",
        "finish_reason": "stop",
        "usage": fake_endpoint.usage_of_last_call(completion_tokens=3),
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
        dynamodb, TABLE, key(SESSION), ttl_days=7, max_turns=20, clock=lambda: now[0]
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
            history = DynamoDBTurnHistory(dynamodb, TABLE, key(SESSION), ttl_days=7, max_turns=20)
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
    response = forget(chat, lambda_context, SESSION)
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
    history = DynamoDBTurnHistory(dynamodb, TABLE, key(SESSION), ttl_days=7, max_turns=2)
    history.add_messages([HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2"), AIMessage("a2")])
    history.add_messages([HumanMessage("q3"), AIMessage("a3")])
    assert [m.text for m in history.messages] == ["q2", "a2", "q3", "a3"]
    with pytest.raises(ValueError, match="pairs"):
        history.add_messages([HumanMessage("lonely")])
    history.clear()
    assert history.messages == []


# -----------------------------------------------------------------------------
# Conversations belong to their caller
# -----------------------------------------------------------------------------


def test_another_principal_on_the_same_id_sees_none_of_the_conversation(
    chat, fake_endpoint, dynamodb, lambda_context
):
    fake_endpoint.reply("Paris.", "Lyon is nice.", "Bonjour.")
    ask(chat, lambda_context, "What is the capital of France?", SESSION)
    ask(chat, lambda_context, "Name another city.", SESSION)

    reply = ask(chat, lambda_context, "What did I ask before?", SESSION, caller=BOB)

    # Bob's request reads as a new session: the same answer shape, none of Alice's turns.
    assert reply | {"usage": None} == {
        "answer": "Bonjour.",
        "session_id": SESSION,
        "memory": "enabled",
        "finish_reason": "stop",
        "usage": None,
    }
    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "What did I ask before?"}
    ]
    assert [t["question"]["S"] for t in turns(dynamodb, SESSION)] == [
        "What is the capital of France?",
        "Name another city.",
    ]
    assert [t["question"]["S"] for t in turns(dynamodb, SESSION, caller=BOB)] == [
        "What did I ask before?"
    ]


def test_another_principals_delete_leaves_the_conversation_in_place(
    chat, fake_endpoint, dynamodb, lambda_context
):
    ask(chat, lambda_context, "First", SESSION)
    ask(chat, lambda_context, "Second", SESSION)

    response = forget(chat, lambda_context, SESSION, caller=BOB)

    # As for any unknown session: nothing tells Bob that Alice's id exists.
    assert response["statusCode"] == 200
    assert response_json(response) == {"session_id": SESSION, "deleted_turns": 0}
    assert len(turns(dynamodb, SESSION)) == 2
    assert response_json(forget(chat, lambda_context, SESSION)) == {
        "session_id": SESSION,
        "deleted_turns": 2,
    }
    assert all_items(dynamodb) == []


def test_principals_are_told_apart_by_unique_id_not_by_name(
    chat, fake_endpoint, dynamodb, lambda_context
):
    """A user deleted and re-created under the same name is a new principal (new userId)."""
    ask(chat, lambda_context, "Mine", SESSION)
    recreated = {**ALICE, "userId": "AIDAJQABLZS4A3QDU576Q", "callerId": "AIDAJQABLZS4A3QDU576Q"}
    ask(chat, lambda_context, "Hello", SESSION, caller=recreated)
    assert fake_endpoint.last_request["messages"][1:] == [{"role": "user", "content": "Hello"}]


# Two replicas of one backend service: the same role, each with its own session name.
ROLE_ID = "AROA3XFRBF535PLBIFPI4"
REPLICA_A = iam_authorizer(
    f"{ROLE_ID}:a",
    "arn:aws:sts::123456789012:assumed-role/ChatBackend/a",
    account_id="123456789012",
)
REPLICA_B = iam_authorizer(
    f"{ROLE_ID}:b",
    "arn:aws:sts::123456789012:assumed-role/ChatBackend/b",
    account_id="123456789012",
)


def test_by_default_two_sessions_of_one_role_are_two_callers(
    chat, fake_endpoint, dynamodb, lambda_context
):
    fake_endpoint.reply("Noted.", "I do not know.")
    ask(chat, lambda_context, "My name is Ada.", SESSION, caller=REPLICA_A)

    ask(chat, lambda_context, "What is my name?", SESSION, caller=REPLICA_B)

    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "What is my name?"}
    ]


def test_role_scope_lets_every_session_of_a_role_continue_one_conversation(
    load_chat, fake_endpoint, dynamodb, lambda_context
):
    chat = load_chat(CHAT_SESSION_SCOPE="role")
    fake_endpoint.reply("Noted.", "Ada.")
    ask(chat, lambda_context, "My name is Ada.", SESSION, caller=REPLICA_A)

    reply = ask(chat, lambda_context, "What is my name?", SESSION, caller=REPLICA_B)

    assert reply["answer"] == "Ada."
    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What is my name?"},
    ]
    # Stored under the role's unique id, without a session name.
    assert {item["session_id"]["S"] for item in all_items(dynamodb)} == {
        f"iam:123456789012:{ROLE_ID}#{SESSION}"
    }
    # Another replica may also forget it; another principal (an IAM user) still cannot.
    assert response_json(forget(chat, lambda_context, SESSION, caller=ALICE))["deleted_turns"] == 0
    deleted = response_json(forget(chat, lambda_context, SESSION, caller=REPLICA_A))
    assert deleted["deleted_turns"] == 2


def test_role_scope_keeps_iam_users_apart(load_chat, fake_endpoint, dynamodb, lambda_context):
    chat = load_chat(CHAT_SESSION_SCOPE="role")
    fake_endpoint.reply("Noted.", "I do not know.")
    ask(chat, lambda_context, "My name is Ada.", SESSION, caller=ALICE)
    recreated = {**ALICE, "userId": "AIDAJQABLZS4A3QDU576Q", "callerId": "AIDAJQABLZS4A3QDU576Q"}
    ask(chat, lambda_context, "What is my name?", SESSION, caller=recreated)
    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "What is my name?"}
    ]


def test_an_aws_iam_url_without_a_caller_identity_is_refused(
    chat, fake_endpoint, dynamodb, lambda_context
):
    for event in (
        function_url_event(json.dumps(["Hi", SESSION]), caller=None),
        function_url_event(None, method="DELETE", query={"session_id": SESSION}, caller=None),
    ):
        response = chat.handler(event, lambda_context)
        assert response["statusCode"] == 403
        assert response_json(response)["error"]["code"] == "no_caller_identity"
    assert fake_endpoint.invocations == []
    assert all_items(dynamodb) == []


def test_concurrent_requests_on_one_callers_session_keep_every_turn(
    chat, fake_endpoint, dynamodb, lambda_context
):
    """Several requests of one caller on one session at once, through the handler."""
    questions = [f"question {index}" for index in range(4)]
    barrier = threading.Barrier(len(questions))
    statuses: list[int] = []

    def request(question: str) -> None:
        barrier.wait(timeout=10)
        event = function_url_event(json.dumps([question, SESSION]))
        statuses.append(chat.handler(event, lambda_context)["statusCode"])

    threads = [threading.Thread(target=request, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * len(questions)
    assert sorted(t["question"]["S"] for t in turns(dynamodb, SESSION)) == questions


# -----------------------------------------------------------------------------
# Public URLs (NONE): only ids the function issued
# -----------------------------------------------------------------------------


@pytest.fixture
def public_chat(load_chat):
    return load_chat(URL_AUTHORIZATION_TYPE="NONE")


@pytest.mark.parametrize(
    "session_id",
    [
        "user-42-session",  # a caller-chosen id
        "x" * 43,  # the issued ids' shape, but never issued
        SESSION,
    ],
)
def test_public_url_refuses_session_ids_it_did_not_issue(
    public_chat, fake_endpoint, dynamodb, lambda_context, session_id
):
    for event in (
        function_url_event(json.dumps(["Hi", session_id]), caller=None),
        function_url_event(None, method="DELETE", query={"session_id": session_id}, caller=None),
    ):
        response = public_chat.handler(event, lambda_context)
        if event["requestContext"]["http"]["method"] == "DELETE" and len(session_id) == 43:
            # Well formed: deleting it is a no-op, as for an expired session.
            assert response_json(response) == {"session_id": session_id, "deleted_turns": 0}
            continue
        assert response["statusCode"] == 400, response["body"]
        error = response_json(response)["error"]
        assert error["code"] == "unknown_session"
        assert "omit session_id to start one" in error["message"]
    assert fake_endpoint.invocations == []
    assert all_items(dynamodb) == []


def test_public_url_continues_the_sessions_it_issued(
    public_chat, fake_endpoint, dynamodb, lambda_context
):
    fake_endpoint.reply("Paris.", "About 2.1 million.")
    first = ask(public_chat, lambda_context, "What is the capital of France?", caller=None)
    session_id = first["session_id"]
    assert len(session_id) == 43

    second = ask(public_chat, lambda_context, "How many live there?", session_id, caller=None)

    assert second["session_id"] == session_id
    assert fake_endpoint.last_request["messages"][1:] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "How many live there?"},
    ]
    assert len(turns(dynamodb, session_id, caller=None)) == 2
    deleted = public_chat.handler(
        function_url_event(None, method="DELETE", query={"session_id": session_id}, caller=None),
        lambda_context,
    )
    assert response_json(deleted) == {"session_id": session_id, "deleted_turns": 2}
    # Deleted is as good as never issued: the id cannot be continued.
    response = public_chat.handler(
        function_url_event(json.dumps(["Again", session_id]), caller=None), lambda_context
    )
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "unknown_session"


def test_issued_session_ids_are_unguessable(public_chat, fake_endpoint, lambda_context):
    ids = {ask(public_chat, lambda_context, "Hi", caller=None)["session_id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(
        len(i) == 43 and set(i) <= set(string.ascii_letters + string.digits + "-_") for i in ids
    )
