"""Lambda handler for chat: POST `["question", "session-id"?]` -> {"answer", "session_id"}.

DELETE `?session_id=...` forgets a session. `POST /v1/chat/completions` and `GET /v1/models`
are OpenAI's Chat Completions API (chat.completions, llm_app.http.openai). Sessions belong to
the signed caller (AWS_IAM) or the bearer (a key, a token's user: llm_app.auth); a public URL
without a bearer mode continues only ids it issued. With `accept: text/event-stream` (or
`"stream": true`) the answer streams (llm_app.http.edge).

Two front doors serve `ROUTES`: `handler`, the buffered Lambda handler
(`chat.handler.handler`), and the ASGI app (llm_app.http.web) that the zip's `run.sh` starts
with `python -m llm_app.http.server chat.handler` behind the Lambda Web Adapter
(response_streaming = true).
"""

from __future__ import annotations

# ruff: noqa: E402 - the imports below run inside the init phase begun first
from llm_app.runtime import init_phase

init_phase.begin()  # cheaper imports (llm_app.runtime.init_phase); the last line ends it

import time

from aws_lambda_powertools import Logger

from chat.completions import complete
from chat.conversation import chat, parse_chat_request
from chat.history import history_opener, require_issued, session_owner, validate_session_id
from llm_app.auth.sign_in import sign_in_from_settings
from llm_app.config import Settings, auth_settings_from_env
from llm_app.errors import AppError, ErrorCode
from llm_app.http.lambda_handler import function_url_handler
from llm_app.http.openai.request import ModelIds, parse_chat_completion
from llm_app.http.openai.wire import OPENAI_WIRE, models_list
from llm_app.http.request import HttpRequest, parse_json, streaming_requested
from llm_app.http.routes import Routes, WiredRoute
from llm_app.model.answer import Answer, Facts, Reply
from llm_app.model.endpoint import Endpoint
from llm_app.redaction import session_tag
from llm_app.runtime import metrics, tracing
from llm_app.runtime.snap_start import register_restore_hooks

# Built once per container, reused by every request it serves.
logger = Logger()
SETTINGS = Settings.from_env()
# Bearer sign-in (API keys, tokens) when a mode is on: the edge checks it before any route.
SIGN_IN = sign_in_from_settings(SETTINGS, auth_settings_from_env())
ENDPOINT = Endpoint.from_settings(SETTINGS, logger)
OPEN_HISTORY = history_opener(SETTINGS)  # None: memory is off
MODELS = ModelIds.from_settings(SETTINGS)
STARTED = int(time.time())
metrics.start(SETTINGS)  # EMF lines in the deployment's namespace
tracing.start(SETTINGS)  # X-Ray subsegments, only when tracing is on
register_restore_hooks()  # SnapStart: what a restored copy must redo


def ask(request: HttpRequest) -> Answer:
    chat_request = parse_chat_request(parse_json(request.body), SETTINGS)
    owner = session_owner(request, SETTINGS) if OPEN_HISTORY is not None else None
    stream = streaming_requested(request.accept, chat_request.stream)
    return chat(ENDPOINT, SETTINGS, chat_request, OPEN_HISTORY, owner, stream=stream)


def forget(request: HttpRequest) -> Reply:
    if OPEN_HISTORY is None:
        raise AppError(
            ErrorCode.INVALID_REQUEST, "Conversation memory is disabled; no session to forget."
        )
    owner = session_owner(request, SETTINGS)
    session_id = validate_session_id(request.query.get("session_id"))
    require_issued(owner, session_id)
    # Only the caller's own session: another caller's id deletes nothing and says 0.
    deleted = OPEN_HISTORY(owner, session_id).clear_counting()
    return Reply(
        {"session_id": session_id, "deleted_turns": deleted},
        Facts(log={"session_tag": session_tag(owner.key, session_id), "deleted_turns": deleted}),
    )


def chat_completions(request: HttpRequest) -> Answer:
    """OpenAI's Chat Completions (chat.completions): stateless, the client's messages."""
    body = parse_chat_completion(
        parse_json(request.body), models=MODELS, max_new_tokens=SETTINGS.max_new_tokens
    )
    return complete(ENDPOINT, SETTINGS, body)


def list_models(request: HttpRequest) -> Reply:
    owner = MODELS.hub_id.partition("/")[0] if "/" in MODELS.hub_id else "sagemaker"
    return Reply(models_list(MODELS.ids, created=STARTED, owned_by=owner))


ROUTES: Routes = {
    "POST": ask,
    "DELETE": forget,
    "POST /v1/chat/completions": WiredRoute(chat_completions, OPENAI_WIRE),
    "GET /v1/models": WiredRoute(list_models, OPENAI_WIRE),
}
handler = function_url_handler(ROUTES, SETTINGS, logger, SIGN_IN)


init_phase.end()  # the last line of the init
