"""Prompt budgeting against the model's input-token limit, without shipping a tokenizer.

The functions do not carry the model's tokenizer (it would cost megabytes and a Hub download
at build time), so they estimate. One token per 3 UTF-8 bytes over-counts Llama-family
tokenizers on English (about 4 characters a token) and roughly matches them on CJK text
(3 bytes a character, about one token each), so a request the estimate admits fits the
model. The server still validates exactly; its rejection reaches the caller as a model error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from langchain_core.messages import BaseMessage

BYTES_PER_TOKEN = 3
# Chat templates add role markers and separators around each message
# (Zephyr: "<|user|>\n...</s>\n").
TOKENS_PER_MESSAGE = 8
# The template's generation prompt ("<|assistant|>\n") and the BOS token.
TOKENS_PER_PROMPT = 8


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def estimate_message_tokens(message: BaseMessage) -> int:
    return estimate_tokens(message.text) + TOKENS_PER_MESSAGE


def estimate_prompt_tokens(messages: Sequence[BaseMessage]) -> int:
    return TOKENS_PER_PROMPT + sum(estimate_message_tokens(m) for m in messages)


def count_messages_tokens(messages: Sequence[BaseMessage]) -> int:
    """Token counter in the shape `langchain_core.messages.trim_messages` expects."""
    return sum(estimate_message_tokens(m) for m in messages)
