"""Prompt building for both functions: formats, budgets, trimming."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from chat.conversation import build_chat_messages, parse_chat_request
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.tokens import estimate_tokens, truncate_to_tokens
from qa.document_qa import EXAMPLE_DOCUMENT, build_qa_messages, parse_qa_request
from tools.model_server.scripted_backend import llama_like_token_count

SETTINGS = Settings(endpoint_name="e", max_input_tokens=200)


def test_estimate_over_counts_english_and_counts_cjk_per_character():
    # Llama and SmolLM2: 7 tokens (a word each, and the question mark).
    assert estimate_tokens("What is the capital of France?") == 11
    assert estimate_tokens("東京") == 4  # SmolLM2: 4; Llama 2: 2 to 6 (byte fallback)


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("2024-01-15,1234.56", 18),  # every digit and mark a token (Llama, SmolLM2)
        ('{"a": [1, 2, 3]}', 12),
        ("\n\n\t", 3),
        ("é", 1),
        ("😀", 3),
    ],
)
def test_estimate_gives_digits_punctuation_and_non_ascii_a_token_each(text, at_least):
    assert estimate_tokens(text) >= at_least


def test_qa_defaults_to_the_example_document():
    request = parse_qa_request(["How long?"], SETTINGS)
    assert request.documents == (EXAMPLE_DOCUMENT,)


@pytest.mark.parametrize("documents", ["a string", [1], [" ", ""]])
def test_qa_documents_must_be_texts(documents):
    with pytest.raises(AppError, match="documents"):
        parse_qa_request(["q", documents], SETTINGS)


def test_qa_prompt_is_the_seeds():
    request = parse_qa_request(["Who?", ["Doc one.", "Doc two."]], SETTINGS)
    [message] = build_qa_messages(request.question, request.documents, SETTINGS)
    assert isinstance(message, HumanMessage)
    assert message.content == (
        "Use the following pieces of context to answer the question at the end.\n\n"
        "Doc one.\n\nDoc two.\n\nQuestion: Who?\nAnswer:"
    )


def test_qa_refuses_context_over_budget():
    with pytest.raises(AppError) as caught:
        build_qa_messages("q", ("x" * 700,), SETTINGS)
    assert caught.value.code is ErrorCode.CONTEXT_TOO_LONG


def test_chat_request_forms():
    assert parse_chat_request(["hi"], SETTINGS).session_id is None
    assert (
        parse_chat_request({"query": "hi", "session_id": "abcdefgh"}, SETTINGS).session_id
        == "abcdefgh"
    )


def test_chat_keeps_newest_whole_turns_within_budget():
    history = []
    for index in range(10):
        history += [HumanMessage(f"q{index} " + "x" * 60), AIMessage(f"a{index} " + "y" * 60)]
    messages = build_chat_messages(SETTINGS, history, "now?")
    assert isinstance(messages[0], SystemMessage)
    assert messages[-1].content == "now?"
    middle = messages[1:-1]
    assert middle
    assert len(middle) % 2 == 0
    assert isinstance(middle[0], HumanMessage)
    assert middle[-1].content.startswith("a9 ")
    assert len(middle) < 20


def test_chat_question_alone_over_budget_is_413():
    with pytest.raises(AppError) as caught:
        build_chat_messages(SETTINGS, [], "x" * 1000)
    assert caught.value.code is ErrorCode.CONTEXT_TOO_LONG


@given(st.text(max_size=300))
def test_the_estimate_is_never_below_the_fake_endpoints_llama_like_count(text):
    # The fake endpoint counts as Llama's tokenizer does on digits, marks and non-ASCII text;
    # a request the estimate admits must fit it (denser tokenizers: tests/functions/test_budgets).
    assert estimate_tokens(text) >= llama_like_token_count(text)


@given(st.text(max_size=300), st.integers(min_value=0, max_value=400))
def test_truncating_prices_text_as_the_estimate_does(text, tokens):
    # The splitter and the budgets count with estimate_tokens, the cuts with truncate_to_tokens:
    # a text cut to its own estimate stays whole, and a cut never exceeds what it was given.
    assert truncate_to_tokens(text, estimate_tokens(text)) == text
    cut = truncate_to_tokens(text, tokens)
    assert text.startswith(cut)
    assert estimate_tokens(cut) <= tokens
