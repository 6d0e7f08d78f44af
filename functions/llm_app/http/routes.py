"""The routes of a function and the wire format each speaks.

A function's `ROUTES` maps a method ("POST": the seed's routes, on any path no other route
claims) or a method and a path ("GET /v1/models": that path only) to a `Route`, or to a
`WiredRoute` that speaks a wire format of its own (OpenAI's, say). The path picks the wire
format before the request is read, so every error on it reads in its shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.renderers import (
    HttpResponse,
    JsonAnswer,
    PlainText,
    Renderer,
    ServerSentEvents,
    error_response,
)
from llm_app.http.request import HttpRequest, plain_text_preferred
from llm_app.model.answer import Answer, Reply

Route = Callable[[HttpRequest], Answer | Reply]
# Which wire format an answer goes out in: the request, whether the answer streams, settings.
ChooseRenderer = Callable[[HttpRequest, bool, Settings], Renderer]


@dataclass(frozen=True)
class WireFormat:
    """How a route's answers (`choose`) and its errors before the first byte (`refuse`) read."""

    choose: ChooseRenderer
    refuse: Callable[[AppError], HttpResponse] = error_response


@dataclass(frozen=True)
class WiredRoute:
    """A route that speaks a wire format of its own (OpenAI's, say)."""

    route: Route
    wire: WireFormat


# Keys: a method ("POST": the seed's routes, on any path no other route claims) or a method
# and a path ("GET /v1/models": that path only).
Routes = Mapping[str, Route | WiredRoute]


def renderer_for(request: HttpRequest, streamed: bool, settings: Settings) -> Renderer:
    if not streamed:
        return JsonAnswer()
    if plain_text_preferred(request.accept):
        return PlainText()
    return ServerSentEvents(settings.endpoint_name, request.request_id)


SEED_WIRE = WireFormat(renderer_for)


def wire_for(routes: Routes, path: str) -> WireFormat:
    """The wire format of the routes on `path` (the seed's unless a wired route claims it)."""
    for route in _on_path(routes, path).values():
        if isinstance(route, WiredRoute):
            return route.wire
    return SEED_WIRE


def _on_path(routes: Routes, path: str) -> dict[str, Route | WiredRoute]:
    """The routes answering on `path`, by method: its own, else the seed's (method-only)."""
    own = {key.partition(" ")[0]: r for key, r in routes.items() if key.partition(" ")[2] == path}
    return own or {key: route for key, route in routes.items() if " " not in key}


def route_for(routes: Routes, method: str, path: str) -> Route:
    """The route for `method` on `path`; 405 naming the methods the path allows."""
    on_path = _on_path(routes, path)
    route = on_path.get(method)
    if isinstance(route, WiredRoute):
        return route.route
    if route is None:
        allowed = ", ".join(sorted(on_path))
        raise AppError(
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{method} is not supported here; use {allowed}.",
            headers={"allow": allowed},
        )
    return route
