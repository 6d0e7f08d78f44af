"""Lambda handler for document QA: POST `["question", ["document", ...]]` -> {"answer": ...}."""

from __future__ import annotations

# First: pauses the cyclic garbage collector while the imports below run (see init_phase).
from llm_app import init_phase

# isort: split
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_app.config import Settings
from llm_app.function_url import HttpRequest, parse_json
from llm_app.model import Endpoint
from llm_app.service import serve
from llm_app.snap_start import register_restore_hooks
from qa.document_qa import build_qa_messages, parse_qa_request

# Built once per container, reused by every request it serves.
logger = Logger()
SETTINGS = Settings.from_env()
ENDPOINT = Endpoint.from_settings(SETTINGS, logger)
register_restore_hooks()  # SnapStart: what a restored copy must redo


def answer(request: HttpRequest) -> Mapping[str, Any]:
    qa_request = parse_qa_request(parse_json(request.body), SETTINGS)
    messages = build_qa_messages(qa_request, SETTINGS)
    logger.append_keys(documents=len(qa_request.documents))
    text = ENDPOINT.answer(messages)
    if SETTINGS.log_prompts:
        logger.info("exchange", extra={"question": qa_request.question, "answer": text})
    return {"answer": text}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event, routes={"POST": answer}, settings=SETTINGS, logger=logger)


init_phase.finish()  # the last line of the init
