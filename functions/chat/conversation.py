"""Chat: a system prompt, the session's recent turns, and the question, as chat messages."""

from __future__ import annotations

from collections.abc import Sequence
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
from llm_app.model.answer import Answer, Generation, answer_with
from llm_app.model.endpoint import Endpoint
from llm_app.model.engine_errors import PromptTooLong
from llm_app.model.tokens import count_messages_tokens, estimate_prompt_tokens
from llm_app.redaction import session_tag

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


def generate_within_budget(
    endpoint: Endpoint,
    settings: Settings,
    history: Sequence[BaseMessage],
    question: str,
    *,
    stream: bool = False,
) -> tuple[Generation, list[BaseMessage]]:
    """The model's answer, and the prompt that got it.

    When the endpoint counts more tokens than the estimate did (a tokenizer denser than
    expected), older turns leave by the ratio it reports and the question is asked once more;
    a second refusal is the caller's 413. A streamed call's refusal arrives before its
    first piece (`Endpoint.generate` reads up to it), so streamed chats retry the same way.
    """
    messages = build_chat_messages(settings, history, question)
    try:
        return endpoint.generate(messages, stream=stream), messages
    except PromptTooLong as refused:
        budget = refused.shrink(estimate_prompt_tokens(messages))
        if budget < 1:
            raise
        try:
            messages = build_chat_messages(
                replace(settings, max_input_tokens=budget), history, question
            )
        except AppError:
            raise refused from None  # the question alone is too long: the endpoint's figures
        return endpoint.generate(messages, stream=stream), messages


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
    URL an id without turns is refused instead. `stream`: the model call streams (see
    llm_app.model.endpoint); the session is known before the first piece, for the
    x-session-id header.
    """
    memory = "enabled" if open_history is not None else "disabled"
    if open_history is None or owner is None:
        generation, _messages = generate_within_budget(
            endpoint, settings, [], request.question, stream=stream
        )
        fields: dict[str, Any] = {"session_id": None, "memory": memory}
        stateless = answer_with(generation, fields, streamed=stream)
        stateless.log_keys.update(history_turns=0)
        return stateless

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
    generation, messages = generate_within_budget(
        endpoint, settings, past, request.question, stream=stream
    )

    def store_turn(answer: str) -> None:
        history.add_messages([HumanMessage(request.question), AIMessage(answer)])

    answer = answer_with(
        generation,
        {"session_id": session_id, "memory": memory},
        streamed=stream,
        headers={SESSION_HEADER: session_id},
        on_complete=store_turn,
    )
    # Never the id itself: on a public URL it is the conversation's only credential.
    answer.log_keys.update(
        session_tag=session_tag(owner.key, session_id), history_turns=(len(messages) - 2) // 2
    )
    return answer
