"""OpenAI's clients, unchanged, on the chat URL of `make local` (the embedded real model).

The official `openai` SDK (sync and async) and LangChain's ChatOpenAI call the packaged chat
function through the local Lambda Web Adapter and AWS_IAM Function URL, signed by the SigV4
recipe (tools/function_urls/sigv4.py), each buffered and streamed: they list the models, get
"Paris", read usage and finish_reason, and raise their own exception classes for what the
route refuses. The stack is the folder's one (tests/local/conftest.py); each client's checks
share its few short model calls. The paused endpoint's 503 is checked on the paused stack
of test_make_local.py.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from botocore.credentials import Credentials
from langchain_openai import ChatOpenAI
from openai import BadRequestError, NotFoundError

from tests.support.local_stack import REGION, RunningStack, run_pasted
from tools.function_urls.sigv4 import FunctionUrlSigV4

pytestmark = [pytest.mark.local, pytest.mark.model_server]

# Any credentials: the local URL reads the signature's access key as the caller.
SIGV4 = FunctionUrlSigV4(REGION, Credentials("testing", "testing", "testing"))
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
HUB_ID = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"  # the root module's default model_id
ALIAS = "TinyLlama-1.1B-Chat-v1.0"
# Enough for the answer's first sentence: the machine is slow, and greedy answers ramble.
MAX_TOKENS = 24


def base_url(stack: RunningStack) -> str:
    return stack.urls["chat"].rstrip("/") + "/v1"


def test_the_openai_sdk_lists_answers_streams_and_raises_its_own_errors(
    stack: RunningStack,
) -> None:
    client = openai.OpenAI(
        base_url=base_url(stack),
        api_key="unused",
        http_client=httpx.Client(auth=SIGV4),
        max_retries=0,
    )
    # The deployed model's id (the embedded model stands in for it) and its short alias.
    assert [model.id for model in client.models.list()] == [HUB_ID, ALIAS]
    hub_id, alias = HUB_ID, ALIAS

    completion = client.chat.completions.create(
        model=alias,
        messages=FRANCE,  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
    )
    assert "Paris" in (completion.choices[0].message.content or ""), completion
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= MAX_TOKENS

    chunks = list(
        client.chat.completions.create(
            model=hub_id,
            messages=FRANCE,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "Paris" in "".join(pieces), pieces
    assert len([piece for piece in pieces if piece]) > 1  # the tokens came one by one
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(model=alias, messages=FRANCE, tools=[_TOOL])  # type: ignore[arg-type, list-item]
    assert refused.value.body["param"] == "tools"  # type: ignore[index]
    with pytest.raises(NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=FRANCE)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found"
    with pytest.raises(BadRequestError) as too_long:
        client.chat.completions.create(model=alias, messages=_TOO_LONG)  # type: ignore[arg-type]
    assert too_long.value.code == "context_length_exceeded"


def test_the_async_openai_sdk_reads_answers_and_streams(stack: RunningStack) -> None:
    async def ask() -> tuple[str, str, int, list[str]]:
        client = openai.AsyncOpenAI(
            base_url=base_url(stack),
            api_key="unused",
            http_client=httpx.AsyncClient(auth=SIGV4),
            max_retries=0,
        )
        models = [model.id async for model in client.models.list()]
        whole = await client.chat.completions.create(
            model=models[-1],
            messages=FRANCE,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
        )
        assert whole.usage is not None
        stream = await client.chat.completions.create(
            model=models[0],
            messages=FRANCE,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            stream=True,
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        with pytest.raises(NotFoundError):
            await client.chat.completions.create(model="gpt-4o", messages=FRANCE)  # type: ignore[arg-type]
        with pytest.raises(BadRequestError) as refused:
            await client.chat.completions.create(model=models[0], messages=[])
        assert refused.value.body["param"] == "messages"  # type: ignore[index]
        with pytest.raises(BadRequestError) as too_long:
            await client.chat.completions.create(model=models[0], messages=_TOO_LONG)  # type: ignore[arg-type]
        assert too_long.value.code == "context_length_exceeded"
        reason = whole.choices[0].finish_reason
        return whole.choices[0].message.content or "", reason, whole.usage.total_tokens, pieces

    text, finish_reason, total_tokens, pieces = asyncio.run(ask())
    assert "Paris" in text
    assert finish_reason in ("stop", "length")
    assert total_tokens > 0
    assert "Paris" in "".join(pieces), pieces


def test_langchain_chat_openai_answers_and_streams(stack: RunningStack) -> None:
    model = ChatOpenAI(
        model=ALIAS,
        base_url=base_url(stack),
        api_key="unused",  # type: ignore[arg-type]
        http_client=httpx.Client(auth=SIGV4),
        max_tokens=MAX_TOKENS,  # type: ignore[call-arg]
        max_retries=0,
        stream_usage=True,
    )
    message = model.invoke("What is the capital of France?")
    assert "Paris" in str(message.content), message
    assert message.response_metadata["finish_reason"] in ("stop", "length")
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] > 0

    pieces = list(model.stream("What is the capital of France?"))
    assert "Paris" in "".join(str(piece.content) for piece in pieces)
    usage = [piece.usage_metadata for piece in pieces if piece.usage_metadata]
    assert usage
    assert usage[-1]["total_tokens"] > 0

    with pytest.raises(BadRequestError) as too_long:
        model.invoke("word " * 5000)
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(BadRequestError) as refused:
        model.invoke("What is the capital of France?", logprobs=True)
    assert refused.value.body["param"] == "logprobs"  # type: ignore[index]
    with pytest.raises(NotFoundError):
        model.invoke("What is the capital of France?", model="gpt-4o")


def test_the_printed_openai_snippet_answers_when_pasted(stack: RunningStack) -> None:
    text = stack.log.read_text()
    block = text[text.index("OpenAI's API on the chat URL") :].split("\n")
    assert f"base_url {base_url(stack)}" in block[0]
    export = next(line.strip() for line in text.splitlines() if "export AWS_ACCESS_KEY_ID" in line)
    shell = run_pasted(export, block[1].strip())
    assert shell.returncode == 0, shell.stderr
    assert "Paris" in shell.stdout


_TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
_TOO_LONG = [{"role": "user", "content": "word " * 5000}]
