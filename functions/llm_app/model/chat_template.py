"""Where the system prompt goes: a system message, or folded into the first user message.

Some chat templates have no system role: Gemma's and Mistral-Instruct v0.1/v0.2's raise an
error on one, and TGI answers 422 `template_error` (vLLM a 400). On that refusal the system
prompt is folded into the first user message and the call is tried once more; the container
remembers it, so later calls fold at once. SYSTEM_PROMPT_PLACEMENT=user folds from the start,
=system never folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from llm_app.model.engine_errors import SystemRoleRefused

PLACEMENTS = ("auto", "system", "user")


class SystemPromptPlacement:
    def __init__(self, placement: str = "auto") -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
        self.placement = placement
        self.fold = placement == "user"

    def apply(self, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        return fold_system_prompt(messages) if self.fold else list(messages)

    def learn_refusal(self, messages: Sequence[BaseMessage]) -> bool:
        """After a template refusal: whether folding is worth a second try (and remembered)."""
        if self.placement != "auto" or self.fold:
            return False
        if not any(isinstance(m, SystemMessage) for m in messages):
            return False
        self.fold = True  # for the container's lifetime
        return True


def fold_system_prompt(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The system messages' text moved to the start of the first user message."""
    system = "\n\n".join(m.text for m in messages if isinstance(m, SystemMessage))
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    if not system:
        return rest
    for index, message in enumerate(rest):
        if isinstance(message, HumanMessage):
            rest[index] = HumanMessage(f"{system}\n\n{message.text}")
            return rest
    return [HumanMessage(system), *rest]


def call_with_system_prompt_fallback[T](
    call: Callable[[list[BaseMessage]], T],
    messages: Sequence[BaseMessage],
    placement: SystemPromptPlacement,
) -> T:
    """`call(messages)`, folding the system prompt and calling once more if it is refused."""
    try:
        return call(placement.apply(messages))
    except SystemRoleRefused:
        if not placement.learn_refusal(messages):
            raise
        return call(placement.apply(messages))
