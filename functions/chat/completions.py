"""OpenAI's Chat Completions on the chat URL: its request in, the domain's `Answer` out.

Stateless, as OpenAI's API is: the client's messages are sent as they are (a `developer`
message as a system one), under the same token budget as the chat route's (too long: 400
`context_length_exceeded`), with the request's sampling parameters over the stack's. The
model call (`Endpoint.generate`) folds the system messages into the first user message for a
template without a system role, as on the chat route. Rendering (`chat.completion`, chunks)
and the error shape are the edge's (llm_app.http.openai.wire).
"""

from __future__ import annotations

from collections.abc import Iterator

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.openai.request import ChatCompletionRequest
from llm_app.model.answer import Answer, Done, Facts, Item, ModelItem, relay
from llm_app.model.budget import within_budget
from llm_app.model.endpoint import Endpoint
from llm_app.model.tokens import estimate_prompt_tokens

MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}


def complete(endpoint: Endpoint, settings: Settings, request: ChatCompletionRequest) -> Answer:
    """The model's answer to the client's conversation; it is called before this returns."""
    messages = [MESSAGE_TYPES[m.role](m.content) for m in request.messages]
    generation = request.generation_kwargs(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
    )

    def attempt(budget: int) -> Iterator[ModelItem]:
        needed = estimate_prompt_tokens(messages)
        if needed > budget:
            raise AppError(
                ErrorCode.CONTEXT_TOO_LONG,
                f"The messages need about {needed} tokens; the model accepts {budget} input "
                "tokens (MAX_INPUT_TOKENS). Send fewer or shorter messages.",
            )
        return endpoint.generate(messages, stream=request.stream, generation=generation)

    call = within_budget(attempt, settings.max_input_tokens)
    user_turns = sum(m.role == "user" for m in request.messages)
    return Answer(
        _items(call),
        streamed=request.stream,
        facts=Facts(log={"api": "openai", "messages": len(messages), "user_turns": user_turns}),
        question=request.messages[-1].content,
    )


def _items(call: Iterator[ModelItem]) -> Iterator[Item]:
    _, finish = yield from relay(call)
    yield Done(finish.finish_reason, finish.usage)
