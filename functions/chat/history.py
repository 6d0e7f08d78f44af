"""Conversation history in DynamoDB, one item per exchange, behind LangChain's history interface.

Why not langchain-community's DynamoDBChatMessageHistory: it keeps a session in one item that
it reads, appends to and writes back, so the item grows toward DynamoDB's 400 KB limit and two
concurrent requests on one session lose a turn. Here each exchange is its own item keyed
(session_id, turn_id), written once with a condition, so writers never overwrite each other
and every item stays a few KB. Each exchange expires on its own, `ttl_days` after it was
written (not after the session's last turn): the function stops reading it at once, DynamoDB's
TTL deletes it within days.

Conversations belong to their caller: the partition key (attribute `session_id`, kept so
existing tables work) is `<owner>#<session id>`, where the owner is the signed IAM caller
(`iam:<account>:<userId>`; with chat_session_scope = "role", an assumed role's
`iam:<account>:<role unique id>` for all its sessions), a bearer (`key:<key id>`,
`jwt:<issuer>#<sub>`: llm_app.auth) or, on a public URL without one, `public` with ids only
the function issues.
The code calls exactly Query, PutItem and DeleteItem; the role grants exactly those
(tests/terraform checks it against the calls the tests record).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.request import HttpRequest
from llm_app.identity import scoped_caller
from llm_app.runtime.aws import aws_client

if TYPE_CHECKING:  # the stubs are a development dependency, not shipped
    from mypy_boto3_dynamodb import DynamoDBClient

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
# What new_session_id returns: 256 random bits, base64url without padding.
ISSUED_SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
SECONDS_PER_DAY = 86_400
# No session id can contain it, so "<owner>#<id>" is unambiguous (a token's owner may).
KEY_SEPARATOR = "#"
# DynamoDB answers in milliseconds: a few seconds' wait is plenty, and standard retries back
# off on throttling (botocore's legacy defaults wait 60 s per read).
DYNAMODB_READ_TIMEOUT_SECONDS = 5.0
DYNAMODB_MAX_ATTEMPTS = 3
# The handler's logger (same service): the log line carries the request id.
logger = Logger(child=True)


def new_session_id() -> str:
    """Unguessable: on a public URL the id is the only credential to its conversation."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SessionOwner:
    """Whose conversations a request reaches, and whether it may name a session itself."""

    key: str
    issued_ids_only: bool


PUBLIC_OWNER = SessionOwner("public", issued_ids_only=True)


def session_owner(request: HttpRequest, settings: Settings) -> SessionOwner:
    """The signed caller or the bearer owns its sessions; a public URL without a bearer has no
    caller, only issued ids."""
    if request.bearer is not None:  # "key:<key id>" or "jwt:<issuer>#<sub>", never "iam:..."
        return SessionOwner(request.bearer.owner, issued_ids_only=False)
    if settings.url_authorization_type == "NONE":
        return PUBLIC_OWNER
    caller = request.caller
    if caller is None:
        raise AppError(
            ErrorCode.NO_CALLER_IDENTITY,
            "This URL uses AWS_IAM auth, but the request carries no caller identity "
            "(requestContext.authorizer.iam): call it through its URL with a signed request.",
        )
    return SessionOwner(
        f"iam:{scoped_caller(caller, settings.chat_session_scope)}", issued_ids_only=False
    )


def unknown_session() -> AppError:
    return AppError(
        ErrorCode.UNKNOWN_SESSION,
        "This chat URL is public, so it continues only sessions it started and that have not "
        "expired or been deleted: omit session_id to start one, then send the id it returns.",
    )


def require_issued(owner: SessionOwner, session_id: str) -> None:
    """On a public URL, refuse an id the function cannot have issued before touching the table."""
    if owner.issued_ids_only and not ISSUED_SESSION_ID_PATTERN.fullmatch(session_id):
        raise unknown_session()


def partition_key(owner: SessionOwner, session_id: str) -> str:
    return f"{owner.key}{KEY_SEPARATOR}{session_id}"


def validate_session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID_PATTERN.fullmatch(value):
        raise AppError(
            ErrorCode.INVALID_SESSION_ID,
            "A session id is 8 to 128 characters of letters, digits and . _ : - "
            "(omit it to start a new session).",
        )
    return value


HistoryOpener = Callable[[SessionOwner, str], "DynamoDBTurnHistory"]


def build_dynamodb_client(settings: Settings) -> Any:
    """One client per container: short timeouts and standard retries, as for SageMaker."""
    return aws_client(
        "dynamodb",
        settings,
        read_timeout=DYNAMODB_READ_TIMEOUT_SECONDS,
        max_attempts=DYNAMODB_MAX_ATTEMPTS,
        tcp_keepalive=True,
    )


def history_opener(settings: Settings) -> HistoryOpener | None:
    """Chat memory, when a table is named: opens an owner's session (one client per container)."""
    if not settings.history_table_name:
        return None
    client = build_dynamodb_client(settings)

    def open_history(owner: SessionOwner, session_id: str) -> DynamoDBTurnHistory:
        return DynamoDBTurnHistory(
            client,
            settings.history_table_name,
            partition_key(owner, session_id),
            ttl_days=settings.history_ttl_days,
            max_turns=settings.history_max_turns,
        )

    return open_history


class DynamoDBTurnHistory(BaseChatMessageHistory):
    """The recent exchanges of one session; `add_messages` takes (question, answer) pairs.

    `key` is the stored partition key: `partition_key(owner, session_id)` in the function.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        key: str,
        *,
        ttl_days: int,
        max_turns: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self.key = key
        self._ttl_seconds = ttl_days * SECONDS_PER_DAY
        self._max_turns = max_turns
        self._clock = clock

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a field in the base
        """The last `max_turns` unexpired exchanges, oldest first."""
        now = int(self._clock())
        with self._errors_mapped("read"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="session_id = :s",
                # DynamoDB deletes expired items only eventually (within days): an expired
                # turn must not reach the prompt in the meantime.
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={":s": {"S": self.key}, ":now": {"N": str(now)}},
                ProjectionExpression="question, answer",
                ScanIndexForward=False,
                Limit=self._max_turns,
                ConsistentRead=True,
            )
        messages: list[BaseMessage] = []
        for item in reversed(response.get("Items", [])):
            messages.append(HumanMessage(item["question"]["S"]))
            messages.append(AIMessage(item["answer"]["S"]))
        return messages

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store each (human, ai) pair as one new item: an exchange is saved whole or not at all."""
        if len(messages) % 2 or not all(
            isinstance(q, HumanMessage) and isinstance(a, AIMessage)
            for q, a in zip(messages[::2], messages[1::2], strict=True)
        ):
            raise ValueError("history takes (HumanMessage, AIMessage) pairs")
        for question, answer in zip(messages[::2], messages[1::2], strict=True):
            self._put_turn(question.text, answer.text)

    def clear(self) -> None:
        self.clear_counting()

    def clear_counting(self) -> int:
        """Delete every turn of the session; returns how many were deleted."""
        deleted = 0
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "session_id = :s",
            "ExpressionAttributeValues": {":s": {"S": self.key}},
            "ProjectionExpression": "session_id, turn_id",
        }
        while True:
            with self._errors_mapped("clear"):
                page = self._client.query(**query)
                for item in page.get("Items", []):
                    self._client.delete_item(TableName=self._table, Key=item)
                    deleted += 1
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                return deleted
            query["ExclusiveStartKey"] = start_key

    def _put_turn(self, question: str, answer: str) -> None:
        now = self._clock()
        # Time-ordered and unique: concurrent writers on one session get distinct items.
        turn_id = f"{int(now * 1_000_000):020d}-{uuid.uuid4().hex[:12]}"
        with self._errors_mapped("write"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "session_id": {"S": self.key},
                    "turn_id": {"S": turn_id},
                    "question": {"S": question},
                    "answer": {"S": answer},
                    "created_at": {"N": str(int(now))},
                    "expires_at": {"N": str(int(now) + self._ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(turn_id)",
            )

    @contextmanager
    def _errors_mapped(self, action: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as error:
            # AWS's message names the table's ARN and the account: for the log only.
            logger.warning(
                "conversation history failed",
                extra={"action": action, "table": self._table, "aws_error": str(error)},
            )
            code = error.response["Error"].get("Code") if isinstance(error, ClientError) else None
            raise AppError(
                ErrorCode.HISTORY_UNAVAILABLE,
                f"Could not {action} the conversation history"
                f"{f' ({code})' if code else ''}; retry shortly. The function's log has the "
                "details under this request's id.",
                retry_after=2,
            ) from error
