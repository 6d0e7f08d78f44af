"""Chat: a system prompt, the session's recent turns, and the question, as chat messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, trim_messages
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from chat.history import (
    HistoryOpener,
    SessionOwner,
    new_session_id,
    require_issued,
    unknown_session,
    validate_session_id,
)
from llm_app.arguments import bind_arguments, require_flag, require_question
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import (
    Answer,
    Done,
    Facts,
    Item,
    ModelItem,
    relay,
)
from llm_app.model.budget import within_budget
from llm_app.model.endpoint import Endpoint
from llm_app.model.tokens import count_messages_tokens, estimate_prompt_tokens
from llm_app.redaction import session_tag
from llm_app.runtime.metrics import HISTORY_TURNS

CHAT_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "{system_prompt}"),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)

ARGUMENT_NAMES = ("query", "session_id")


# Names the object form also accepts; the seed's array form has two positions.
FIELD_NAMES = (*ARGUMENT_NAMES, "stream")
SESSION_HEADER = "x-session-id"


@dataclass(frozen=True)
class ChatRequest:
    question: str
    session_id: str | None
    # `"stream": true` in the object form: answer as Server-Sent Events.
    stream: bool = False


def parse_chat_request(payload: Any, settings: Settings) -> ChatRequest:
    """`["question"]`, `["question", "session-id"]` or `{"query": ..., "session_id": ...,
    "stream": ...}`."""
    names = ARGUMENT_NAMES if isinstance(payload, list) else FIELD_NAMES
    arguments = bind_arguments(payload, names)
    question = require_question(
        arguments["query"], field="query", max_chars=settings.max_question_chars
    )
    session_id = arguments.get("session_id")
    return ChatRequest(
        question,
        None if session_id is None else validate_session_id(session_id),
        require_flag(arguments.get("stream", False), field="stream"),
    )


def build_chat_messages(
    settings: Settings, history: Sequence[BaseMessage], question: str
) -> list[BaseMessage]:
    """The prompt, keeping the newest turns that fit the model's input budget."""
    fixed = CHAT_PROMPT.format_messages(
        system_prompt=settings.system_prompt, history=[], question=question
    )
    budget = settings.max_input_tokens - estimate_prompt_tokens(fixed)
    if budget < 0:
        raise AppError(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The question needs about {settings.max_input_tokens - budget} tokens with the "
            f"system prompt; the model accepts {settings.max_input_tokens} input tokens "
            "(MAX_INPUT_TOKENS).",
        )
    recent = trim_messages(
        list(history),
        max_tokens=budget,
        token_counter=count_messages_tokens,
        strategy="last",
        start_on="human",
        end_on="ai",
        allow_partial=False,
    )
    return CHAT_PROMPT.format_messages(
        system_prompt=settings.system_prompt, history=recent, question=question
    )


def chat(
    endpoint: Endpoint,
    settings: Settings,
    request: ChatRequest,
    open_history: HistoryOpener | None,
    owner: SessionOwner | None,
    *,
    stream: bool = False,
) -> Answer:
    """Answer one question: `{"answer", "session_id", "memory", "finish_reason", "usage"}`.

    With history, the exchange is saved only once the model finished its answer (a stream
    cut by an error or a client that left saves nothing). The owner's session only: another
    caller's id reads as a new, empty session, so nothing says whether it exists. On a public
    URL an id without turns is refused instead. The model is called (through the budget
    policy, llm_app.model.budget) before this returns: the session is known before the
    first piece, for the x-session-id header.
    """
    memory = "enabled" if open_history is not None else "disabled"
    if open_history is None or owner is None:
        messages, call = _ask_within_budget(endpoint, settings, [], request.question, stream)
        return Answer(
            _answer_items(call, {"session_id": None, "memory": memory}),
            streamed=stream,
            facts=Facts(metrics={HISTORY_TURNS: 0}, log={"history_turns": 0}),
            question=request.question,
        )

    history: BaseChatMessageHistory
    if request.session_id is None:
        session_id = new_session_id()
        history = open_history(owner, session_id)
        past: list[BaseMessage] = []
    else:
        session_id = request.session_id
        require_issued(owner, session_id)
        history = open_history(owner, session_id)
        past = history.messages
        # The table is the record of what was issued: an issued session has turns until
        # they expire or are deleted; a guessed or invented id has none.
        if owner.issued_ids_only and not past:
            raise unknown_session()
    messages, call = _ask_within_budget(endpoint, settings, past, request.question, stream)

    def store_turn(answer: str) -> None:
        history.add_messages([HumanMessage(request.question), AIMessage(answer)])

    turns = (len(messages) - 2) // 2
    return Answer(
        _answer_items(call, {"session_id": session_id, "memory": memory}, store_turn),
        streamed=stream,
        headers={SESSION_HEADER: session_id},
        # Never the id itself: on a public URL it is the conversation's only credential.
        facts=Facts(
            log={"session_tag": session_tag(owner.key, session_id), "history_turns": turns},
            metrics={HISTORY_TURNS: turns},
        ),
        question=request.question,
    )


def _ask_within_budget(
    endpoint: Endpoint,
    settings: Settings,
    history: Sequence[BaseMessage],
    question: str,
    stream: bool,
) -> tuple[list[BaseMessage], Iterator[ModelItem]]:
    """The prompt that the model took, and its call (read up to the first piece): older turns
    give way when the engine finds the prompt too long."""

    def attempt(budget: int) -> tuple[list[BaseMessage], Iterator[ModelItem]]:
        messages = build_chat_messages(
            replace(settings, max_input_tokens=budget), history, question
        )
        return messages, endpoint.generate(messages, stream=stream)

    return within_budget(attempt, settings.max_input_tokens)


def _answer_items(
    call: Iterator[ModelItem],
    fields: dict[str, Any],
    on_complete: Callable[[str], None] | None = None,
) -> Iterator[Item]:
    """The call's text, then Done. `on_complete(text)` runs once the model finished, before
    Done: chat stores the turn there, so an answer cut off by an error is never remembered."""
    text, finish = yield from relay(call)
    if on_complete is not None:
        on_complete(text)
    yield Done(finish.finish_reason, finish.usage, fields)
