"""The one budget policy every model call goes through, buffered or streamed, chat and QA.

Prompts are budgeted against MAX_INPUT_TOKENS with our token estimate (llm_app.model.tokens).
When the engine counts more than the estimate did (a tokenizer denser than expected), it
refuses the prompt for length, as an HTTP error or as an error event in its stream: either
way `Endpoint.generate` raises `PromptTooLong` before anything was sent, carrying the
engine's counts and our estimate of the refused prompt. Then:

    refused -> shrink by the engine's own ratio -> retry once -> refused again: 413

`within_budget(attempt, max_input_tokens)` runs `attempt(budget)`, which builds its prompts
within `budget` and calls the model (reading up to the first piece), once more with the
shrunk budget after a refusal. A prompt that our own estimate finds too long for the shrunk
budget (the question alone no longer fits) is answered with the engine's figures, which say
more than ours.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_app.errors import AppError, ErrorCode
from llm_app.model.engine_errors import PromptTooLong


def within_budget[T](attempt: Callable[[int], T], max_input_tokens: int) -> T:
    """`attempt(max_input_tokens)`; after the engine's refusal for length, once more smaller."""
    try:
        return attempt(max_input_tokens)
    except PromptTooLong as refused:
        first_refusal = refused
    budget = first_refusal.shrunk_budget()
    if budget < 1:
        raise first_refusal
    try:
        return attempt(budget)
    except PromptTooLong:
        raise
    except AppError as again:
        if again.code is ErrorCode.CONTEXT_TOO_LONG:
            raise first_refusal from None
        raise
