"""Lambda handler for document QA: POST `["question", ["document", ...]]` -> {"answer": ...}."""

from __future__ import annotations

# First: pauses the cyclic garbage collector while the imports below run (see init_phase).
from llm_app import init_phase

# isort: split
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_app import metrics, tracing
from llm_app.config import Settings
from llm_app.function_url import HttpRequest, parse_json
from llm_app.model import Endpoint
from llm_app.service import serve
from llm_app.snap_start import register_restore_hooks
from qa.chains import CallGuard, ChainResult, Deadline, run_before_deadline
from qa.document_qa import answer_documents, load_documents, parse_qa_request
from qa.documents import DocumentStore, build_s3_client

# Built once per container, reused by every request it serves.
logger = Logger()
SETTINGS = Settings.from_env()
ENDPOINT = Endpoint.from_settings(SETTINGS, logger)
# The S3 client is built on the first S3 document only (see DocumentStore).
DOCUMENTS = DocumentStore(SETTINGS.document_buckets, lambda: build_s3_client(SETTINGS))
tracing.start(SETTINGS)  # X-Ray subsegments, only when tracing is on
register_restore_hooks()  # SnapStart: what a restored copy must redo


def answer(request: HttpRequest, context: LambdaContext) -> Mapping[str, Any]:
    qa_request = parse_qa_request(parse_json(request.body), SETTINGS)
    deadline = Deadline.from_remaining_ms(
        context.get_remaining_time_in_millis(), SETTINGS.qa_deadline_reserve_seconds
    )
    guard = CallGuard(ENDPOINT.answer, deadline)

    def work() -> ChainResult:
        documents = load_documents(qa_request, DOCUMENTS, SETTINGS)
        return answer_documents(
            qa_request.question, documents, qa_request.chain_type, guard, SETTINGS
        )

    try:
        result = run_before_deadline(work, guard)
    finally:
        logger.append_keys(documents=len(qa_request.documents), model_calls=guard.calls)
    logger.append_keys(chain_type=result.chain_type.value, chunks=result.chunks)
    metrics.qa_chain(chunks=result.chunks)
    if SETTINGS.log_prompts:
        logger.info("exchange", extra={"question": qa_request.question, "answer": result.answer})
    return {"answer": result.answer, "chain_type": result.chain_type.value, "chunks": result.chunks}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(
        event,
        routes={"POST": lambda request: answer(request, context)},
        settings=SETTINGS,
        logger=logger,
    )


init_phase.finish()  # the last line of the init
