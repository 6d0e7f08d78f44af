"""Lambda handler for document QA: POST `["question", ["document", ...]]` -> {"answer": ...}.

A `multipart/form-data` body (`curl -F`) asks the same, its files as documents (qa.uploads).

With `accept: text/event-stream` (or `"stream": true`) the answer streams (llm_app.http.edge):
progress while map_reduce and refine run, then the final call's tokens. Two front doors serve
`ROUTES`: `handler`, the buffered Lambda handler (`qa.handler.handler`), and the ASGI app
`python -m llm_app.http.server qa.handler` that the zip's `run.sh` starts behind the Lambda Web
Adapter (response_streaming = true).
"""

from __future__ import annotations

# ruff: noqa: E402 - the imports below run inside the init phase begun first
from llm_app.runtime import init_phase

init_phase.begin()  # cheaper imports (llm_app.runtime.init_phase); the last line ends it

from collections.abc import Mapping

from aws_lambda_powertools import Logger

from llm_app.auth.sign_in import sign_in_from_settings
from llm_app.config import Settings, auth_settings_from_env
from llm_app.http.lambda_handler import function_url_handler
from llm_app.http.request import HttpRequest, parse_json, streaming_requested
from llm_app.http.routes import Route
from llm_app.model.answer import Answer
from llm_app.model.endpoint import Endpoint
from llm_app.runtime import metrics, tracing
from llm_app.runtime.snap_start import register_restore_hooks
from qa.document_qa import QaRequest, answer_question, load_documents, parse_qa_request
from qa.documents import DocumentStore, build_s3_client
from qa.guard import Deadline
from qa.uploads import is_form_upload, parse_upload

# Built once per container, reused by every request it serves.
logger = Logger()
SETTINGS = Settings.from_env()
# Bearer sign-in (API keys, tokens) when a mode is on: the edge checks it before any route.
SIGN_IN = sign_in_from_settings(SETTINGS, auth_settings_from_env())
ENDPOINT = Endpoint.from_settings(SETTINGS, logger)
# The S3 client is built on the first S3 document only (see DocumentStore).
DOCUMENTS = DocumentStore(SETTINGS.document_buckets, lambda: build_s3_client(SETTINGS))
metrics.start(SETTINGS)  # EMF lines in the deployment's namespace
tracing.start(SETTINGS)  # X-Ray subsegments, only when tracing is on
register_restore_hooks()  # SnapStart: what a restored copy must redo
# Where no deadline is known (a request without a Lambda context): Lambda's longest timeout.
NO_DEADLINE_SECONDS = 900.0


def answer(request: HttpRequest) -> Answer:
    if is_form_upload(request.content_type):  # `curl -F question=... -F document=@notes.txt`
        qa_request = parse_upload(request.body, request.content_type, SETTINGS)
    else:
        qa_request = parse_qa_request(parse_json(request.body), SETTINGS)
    deadline = Deadline(
        request.seconds_left(NO_DEADLINE_SECONDS) - SETTINGS.qa_deadline_reserve_seconds
    )

    def load(qa: QaRequest) -> tuple[str, ...]:
        return load_documents(qa, DOCUMENTS, SETTINGS)

    stream = streaming_requested(request.accept, qa_request.stream)
    return answer_question(qa_request, load, ENDPOINT.generate, deadline, SETTINGS, stream=stream)


ROUTES: Mapping[str, Route] = {"POST": answer}
handler = function_url_handler(ROUTES, SETTINGS, logger, SIGN_IN)


init_phase.end()  # the last line of the init
