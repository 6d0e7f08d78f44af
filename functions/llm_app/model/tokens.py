"""Prompt budgeting against the model's input-token limit, without shipping a tokenizer.

The functions do not carry the model's tokenizer (megabytes, and a Hub download per model),
so they estimate, and the estimate is built not to under-count the tokenizers TGI and vLLM
serve. What real tokenizers do (measured by ``make bench``, tools/bench/tokens.py):

* Llama-family and SmolLM tokenizers give every digit a token of its own, and most
  punctuation marks and symbols too: a CSV of dates and amounts is about one token a
  character, three times a bytes-based guess.
* Common English words are one token each (about 4-5 characters); rare words and code
  identifiers split into pieces of 2-4 letters.
* Each newline, tab and run of indentation is at least one token.
* CJK and other non-ASCII characters take one to three tokens each (byte fallback).

So the estimate counts one token per digit, per punctuation mark or symbol, per whitespace
character not absorbed by the word after it, one token per 3 letters of a word, and for a
non-ASCII character its UTF-8 length less one (at least one). The endpoint still validates
exactly; when it refuses a prompt as too long, the functions learn the real count from its
error and trim (see llm_app.model.engine_errors.PromptTooLong).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the estimate itself is plain Python (tools/bench/tokens.py)
    from langchain_core.messages import BaseMessage

# Letters a word-piece holds at most, in the estimate: real tokenizers do 4-5 on English.
LETTERS_PER_TOKEN = 3
# Chat templates add role markers and separators around each message
# (Zephyr: "<|user|>\n...</s>\n").
TOKENS_PER_MESSAGE = 8
# The template's generation prompt ("<|assistant|>\n") and the BOS token.
TOKENS_PER_PROMPT = 8

# One match per piece the estimate prices: a word (with the one space a tokenizer folds into
# it), or any other single character.
_PIECES = re.compile(r" ?[A-Za-z]+|.", re.DOTALL)
_WORDS = re.compile(r"[A-Za-z]+")
_FOLDED_SPACES = re.compile(r" (?=[A-Za-z])")


def _word_tokens(word: str) -> int:
    # Acronyms and codes (ACME, USD, ID) are rare as whole tokens: two letters a piece.
    per_token = 2 if len(word) > 1 and word.isupper() else LETTERS_PER_TOKEN
    return math.ceil(len(word) / per_token)


def _piece_tokens(piece: str) -> int:
    last = piece[-1]
    if last.isascii() and last.isalpha():
        return _word_tokens(piece.lstrip(" "))
    if piece.isascii():
        return 1  # a digit, punctuation, a symbol, whitespace
    return len(piece.encode("utf-8", "surrogatepass")) - 1  # 2 to 4 bytes: 1 to 3 tokens


def _pieces(text: str) -> Iterator[tuple[int, int]]:
    """(end offset, tokens) of each priced piece of ``text``."""
    for match in _PIECES.finditer(text):
        yield match.end(), _piece_tokens(match.group())


def estimate_tokens(text: str) -> int:
    """Tokens `text` takes, counted so as not to fall below what a real tokenizer counts.

    The sum of `_pieces`, counted by kind rather than piece by piece (a quarter of the time:
    it prices every chunk the QA splitter tries): the words; one token per other ASCII
    character, less the spaces folded into the word after them; and for the non-ASCII
    characters, their UTF-8 bytes less one each.
    """
    words = _WORDS.findall(text)
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_ascii = ascii_chars - sum(map(len, words)) - len(_FOLDED_SPACES.findall(text))
    non_ascii = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return sum(map(_word_tokens, words)) + other_ascii + non_ascii


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The longest start of `text` whose estimate is at most `tokens`."""
    used = 0
    end = 0
    for piece_end, piece_tokens in _pieces(text):
        if used + piece_tokens > tokens:
            break
        used += piece_tokens
        end = piece_end
    return text[:end]


def estimate_message_tokens(message: BaseMessage) -> int:
    return estimate_tokens(message.text) + TOKENS_PER_MESSAGE


def estimate_prompt_tokens(messages: Sequence[BaseMessage]) -> int:
    return TOKENS_PER_PROMPT + sum(estimate_message_tokens(m) for m in messages)


def count_messages_tokens(messages: Sequence[BaseMessage]) -> int:
    """Token counter in the shape `langchain_core.messages.trim_messages` expects."""
    return sum(estimate_message_tokens(m) for m in messages)
