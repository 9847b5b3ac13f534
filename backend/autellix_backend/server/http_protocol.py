"""uvicorn's httptools protocol, writing a response's head and its first body bytes at once.

uvicorn writes the status line and headers to the socket as soon as the app sends
``http.response.start``, then the body in a second write. On loopback each write is a system
call that delivers a segment and wakes the reader, so a small JSON answer costs two of each,
at the gateway and at every engine behind it. Here the head waits for the body's first bytes
and goes out with them in one write. A stream's head (chunked) waits at most until the next
turn of the event loop, so a client sees it even while the first event is still to come; any
other head goes out at the latest when its response completes (HEAD, an empty body) or its
connection closes. Everything else is uvicorn's own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadWithBody:
    """A response cycle's transport that holds the head until the body's first bytes."""

    __slots__ = ("_cycle", "_done", "_handle", "_held", "_owner", "_transport", "_waiting_head")

    def __init__(
        self,
        transport: asyncio.Transport,
        cycle: RequestResponseCycle,
        owner: CoalescingHttpToolsProtocol,
    ) -> None:
        self._transport = transport
        self._cycle = cycle
        self._owner = owner
        self._held: bytes | None = None
        self._handle: asyncio.Handle | None = None
        self._waiting_head = True
        self._done: Callable[[], None] = cycle.on_response
        cycle.on_response = self._completed

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._release()
            data = held + data
        elif self._waiting_head and self._cycle.response_started:  # this is the head
            self._waiting_head = False
            self._held = data
            self._owner.holding = self
            if self._cycle.chunked_encoding:  # a stream: its first event may come later
                self._handle = asyncio.get_running_loop().call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Write the held head alone."""
        held = self._held
        if held is not None:
            self._release()
            self._transport.write(held)

    def _release(self) -> None:
        self._held = None
        if self._owner.holding is self:
            self._owner.holding = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _completed(self) -> None:
        self.flush()
        self._done()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._release()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose responses write head and body together."""

    holding: _HeadWithBody | None = None
    """The response whose head is held, if any (written before anything else)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, _HeadWithBody):
            cycle.transport = _HeadWithBody(self.transport, cycle, self)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        if self.holding is not None:
            self.holding.flush()
        super().send_400_response(msg)
