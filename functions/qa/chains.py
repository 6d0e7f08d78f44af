"""The seed's `loadQAChain` chain types over the model endpoint: stuff, map_reduce and refine.

- stuff: every document in one prompt (the seed's chain).
- map_reduce: each chunk answered on its own, concurrently (at most QA_MAP_CONCURRENCY calls in
  flight), then the partial answers combined, in as many rounds as it takes for them to fit
  one prompt.
- refine: the chunks walked in order, each call improving the answer so far.

Every chain runs all its calls but the last buffered and returns the last call's prompt: the
caller makes that call (`CallGuard.final`), streamed when the answer streams, so its tokens
reach the caller as they come.

Every model call goes through a `CallGuard` (qa.guard).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_text_splitters import RecursiveCharacterTextSplitter

from llm_app.model.tokens import estimate_prompt_tokens, estimate_tokens, truncate_to_tokens
from qa.guard import CallGuard


class ChainType(StrEnum):
    STUFF = "stuff"
    MAP_REDUCE = "map_reduce"
    REFINE = "refine"


def _human(template: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([("human", template)])


# The seed's prompt; also the first step of refine, as in LangChain's refine chain.
QA_PROMPT = _human(
    "Use the following pieces of context to answer the question at the end.\n\n"
    "{context}\n\nQuestion: {question}\nAnswer:"
)
MAP_PROMPT = _human(
    "Use the following part of a long document to see whether any of its text helps answer "
    "the question. Quote the relevant text, or say that it holds nothing relevant.\n\n"
    "{context}\n\nQuestion: {question}\nRelevant text, if any:"
)
COMBINE_PROMPT = _human(
    "Below are notes taken from the parts of a long document, and a question. Use them to "
    "write the final answer; if they do not hold it, say that you don't know.\n\n"
    "{summaries}\n\nQuestion: {question}\nAnswer:"
)
REFINE_PROMPT = _human(
    "The question is: {question}\nThe answer so far is: {existing_answer}\n"
    "Here is more of the document:\n\n{context}\n\n"
    "Improve the answer with this text if it helps; otherwise repeat the answer so far.\n"
    "Answer:"
)
# "Stuff" joins every document into one context, as LangChain's stuff chain does.
DOCUMENT_SEPARATOR = "\n\n"
# Partial answers in a combine prompt.
SUMMARY_SEPARATOR = "\n\n---\n\n"
# Below this many tokens per chunk the question leaves too little room to read a document.
MIN_CHUNK_TOKENS = 64
# Overlap between neighbouring chunks, as a fraction of a chunk: a fact cut by a chunk
# boundary still appears whole in one of them.
CHUNK_OVERLAP_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------------------------
def stuff_messages(question: str, documents: Sequence[str]) -> list[BaseMessage]:
    return QA_PROMPT.format_messages(context=DOCUMENT_SEPARATOR.join(documents), question=question)


def room_for_text(prompt: ChatPromptTemplate, max_input_tokens: int, **variables: str) -> int:
    """Tokens left for document text once the prompt's fixed parts are counted."""
    empty = {name: "" for name in prompt.input_variables}
    return max_input_tokens - estimate_prompt_tokens(prompt.format_messages(**empty | variables))


def split_documents(documents: Sequence[str], chunk_tokens: int) -> list[str]:
    """Chunks of at most `chunk_tokens` (our estimate), split at paragraphs, lines, words."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=int(chunk_tokens * CHUNK_OVERLAP_FRACTION),
        length_function=estimate_tokens,
    )
    return [chunk for document in documents for chunk in splitter.split_text(document)]


def _model_step(guard: CallGuard) -> Runnable[PromptValue, str]:
    return RunnableLambda(guard, name="model_endpoint")


def map_reduce(
    question: str,
    chunks: Sequence[str],
    guard: CallGuard,
    *,
    max_input_tokens: int,
    concurrency: int,
) -> list[BaseMessage]:
    """Map every chunk, combine until one group is left; that group's prompt is returned."""
    config = RunnableConfig(max_concurrency=concurrency)
    guard.plan(len(chunks) + 1)  # the maps and at least the final combine
    map_chain = MAP_PROMPT | _model_step(guard)
    partials = map_chain.batch([{"context": c, "question": question} for c in chunks], config)
    combine_chain = COMBINE_PROMPT | _model_step(guard)
    room = room_for_text(COMBINE_PROMPT, max_input_tokens, question=question)
    # At least one combine call, as LangChain's map_reduce makes, even over a single chunk.
    while True:
        groups = pack_summaries(partials, room)
        inputs = [{"summaries": SUMMARY_SEPARATOR.join(g), "question": question} for g in groups]
        if len(groups) == 1:
            return COMBINE_PROMPT.format_messages(**inputs[0])
        guard.plan(len(groups))
        partials = combine_chain.batch(inputs, config)


def pack_summaries(summaries: Sequence[str], room: int) -> list[list[str]]:
    """Group partial answers so that each group fits one combine prompt of `room` tokens.

    Answers too long for the room are cut; when no two answers fit together, each is cut to
    half the room so that every round at least halves their number.
    """
    separator = estimate_tokens(SUMMARY_SEPARATOR)
    fitted = [truncate_to_tokens(s, room) for s in summaries]
    groups: list[list[str]] = []
    used = 0
    for summary in fitted:
        size = estimate_tokens(summary) + separator
        if groups and used + size <= room:
            groups[-1].append(summary)
            used += size
        else:
            groups.append([summary])
            used = size
    if len(groups) > 1 and len(groups) == len(fitted):
        half = room // 2 - separator
        cut = [truncate_to_tokens(s, half) for s in fitted]
        groups = [cut[i : i + 2] for i in range(0, len(cut), 2)]
    return groups


def refine(
    question: str, chunks: Sequence[str], guard: CallGuard, *, answer_room: int
) -> list[BaseMessage]:
    """Sequential by nature: each call needs the answer before it. Returns the last call's
    prompt (the answer so far refined with the last chunk)."""
    guard.plan(len(chunks))
    prompt = QA_PROMPT.format_messages(context=chunks[0], question=question)
    for chunk in chunks[1:]:
        answer = guard(ChatPromptValue(messages=prompt))
        prompt = REFINE_PROMPT.format_messages(
            question=question,
            existing_answer=truncate_to_tokens(answer, answer_room),
            context=chunk,
        )
    return prompt
