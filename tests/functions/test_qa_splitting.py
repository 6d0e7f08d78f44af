"""The chains' pure parts: chunk sizes, packing partial answers into combine prompts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_app.config import ConfigError, Settings
from llm_app.model.tokens import estimate_tokens
from qa.chains import SUMMARY_SEPARATOR, pack_summaries, split_documents, truncate_to_tokens
from tests.support.documents import FACT, long_document

summaries = st.lists(st.text(min_size=0, max_size=3000), min_size=1, max_size=30)


@given(summaries, st.integers(min_value=40, max_value=1500))
def test_every_group_fits_the_room_and_every_round_shrinks(texts, room):
    groups = pack_summaries(texts, room)
    for group in groups:
        assert estimate_tokens(SUMMARY_SEPARATOR.join(group)) <= room
    if len(texts) > 1:
        assert len(groups) <= (len(texts) + 1) // 2 or len(groups) < len(texts)
        assert len(groups) < len(texts)


def test_short_answers_share_one_group_in_order():
    assert pack_summaries(["a", "b", "c"], 100) == [["a", "b", "c"]]


@given(st.text(max_size=400), st.integers(min_value=0, max_value=200))
def test_truncation_stays_within_the_estimate_and_keeps_the_start(text, tokens):
    cut = truncate_to_tokens(text, tokens)
    assert estimate_tokens(cut) <= tokens
    assert text.startswith(cut)


def test_chunks_fit_their_budget_overlap_and_keep_the_fact_whole():
    # 1250 tokens: a map chunk's room with the default budget and a short question.
    chunks = split_documents([long_document(60_000)], 1250)
    assert all(estimate_tokens(c) <= 1250 for c in chunks)
    assert sum(FACT in c for c in chunks) >= 1
    # Neighbours share their boundary paragraph (the overlap, 10% of a chunk).
    assert all(a.split("\n\n")[-1] in b for a, b in itertools.pairwise(chunks))


def test_a_paragraph_longer_than_a_chunk_is_cut_at_words_with_overlap():
    words = " ".join(f"w{i}" for i in range(3000))
    chunks = split_documents([words], 300)
    assert all(estimate_tokens(c) <= 300 for c in chunks)
    assert all(a.split()[-1] in b.split() for a, b in itertools.pairwise(chunks))


def test_each_document_is_split_on_its_own():
    chunks = split_documents(["first document", "second document"], 500)
    assert chunks == ["first document", "second document"]


def test_qa_settings_are_read_and_validated():
    settings = Settings.from_env(
        {"ENDPOINT_NAME": "e", "QA_DOCUMENT_BUCKETS": " docs , more-docs,", "QA_MAX_CHUNKS": "9"}
    )
    assert settings.document_buckets == {"docs", "more-docs"}
    assert settings.qa_max_chunks == 9
    assert Settings.from_env({"ENDPOINT_NAME": "e"}).document_buckets == frozenset()
    with pytest.raises(ConfigError, match="QA_MAP_CONCURRENCY must be between 1 and 64"):
        Settings.from_env({"ENDPOINT_NAME": "e", "QA_MAP_CONCURRENCY": "0"})
