"""Pure ASGI middleware: request body size limit and per-route request counts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autellix_backend.server.errors import APIError

if TYPE_CHECKING:
    from prometheus_client import Counter


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The request's declared body size: None without a Content-Length, -1 for a bad one."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class StatusRecorder:
    """A ``send`` that remembers the response's status (500 until the response starts)."""

    __slots__ = ("send", "started", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
        await self.send(message)


class BodyLimitMiddleware:
    """Answer 413 for a body over ``max_bytes``, from Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope["headers"])
        if declared is not None and not 0 <= declared <= self.max_bytes:
            await _reject(send, declared, self.max_bytes)
            return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _reject(send: Send, declared: int, limit: int) -> None:
    if declared < 0:
        error = APIError(400, "invalid Content-Length header", code="invalid_header")
    else:
        error = APIError(413, f"request body exceeds {limit} bytes", code="too_large")
    body = _json(error.body())
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


class RequestCounter:
    """``autellix_requests`` by route template and status; each child is looked up once
    (``labels()`` checks and locks each time)."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._children: dict[tuple[str, int], Counter] = {}

    def count(self, path: str, status: int) -> None:
        child = self._children.get((path, status))
        if child is None:
            child = self._children[path, status] = self.counter.labels(path, str(status))
        child.inc()


class RequestCountMiddleware:
    """Count answered requests by route template and status."""

    def __init__(self, app: ASGIApp, *, counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            route = scope.get("route")
            self.counter.count(getattr(route, "path", None) or "unmatched", recorder.status)
