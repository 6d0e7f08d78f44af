"""ASGI's plumbing for door 2 (llm_app.http.web): headers in, the body read within its limit,
an `HttpResponse` sent chunk by chunk as the domain yields it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from llm_app.http.renderers import HttpResponse
from llm_app.model.answer import close_iterator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def plain_text(body: bytes) -> HttpResponse:
    return HttpResponse(200, {"content-type": "text/plain"}, iter((body,)))


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers, names lower-cased (ASGI's), the last of repeated ones."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def read_body(receive: Receive, limit: int) -> tuple[bytes, int | None]:
    """The request body; past `limit` it is drained and only its size kept (answered 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), (size if size > limit else None)


async def send_response(response: HttpResponse, receive: Receive, send: Send) -> None:
    """Send the body chunk by chunk as the domain yields it, each `next()` off the loop."""
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.create_task(watch())
    body: Iterator[bytes] = response.body
    try:
        start = {"status": response.status, "headers": raw_headers(response.headers)}
        await send({"type": "http.response.start", **start})
        while not disconnected.is_set():
            chunk = await asyncio.to_thread(next, body, None)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        await asyncio.to_thread(close_iterator, body)


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
