"""uvicorn's httptools protocol, writing a response's head and its first body bytes at once.

uvicorn writes the status line and headers to the socket as soon as the app sends
``http.response.start``, then the body in a second write. On loopback each write is a system
call that delivers a segment and wakes the reader, so a small JSON answer costs two of each,
at the gateway and at every engine behind it. Here the head waits for the body's first bytes
of the same turn of the event loop and goes out with them in one write; a head whose body is
not sent in that turn (a stream still waiting for its first event) is written on the next
turn, so no client waits on it. Everything else is uvicorn's own code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadWithBody:
    """A response's transport that holds its first write (the head) until the next one."""

    __slots__ = ("_handle", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._handle: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._handle is None and self._held is None:
            self._held = data
            self._handle = asyncio.get_running_loop().call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._release()
            data = held + data
        self._transport.write(data)

    def flush(self) -> None:
        """Write what is held (the head alone)."""
        held = self._held
        if held is not None:
            self._release()
            self._transport.write(held)

    def _release(self) -> None:
        self._held = None
        if self._handle is not None:
            self._handle.cancel()

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

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, _HeadWithBody):
            cycle.transport = _HeadWithBody(self.transport)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, _HeadWithBody):
            cycle.transport.flush()
        super().send_400_response(msg)
