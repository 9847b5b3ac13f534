"""Several gateways, one owner per program: consistent hashing and forwarding to the owner.

Every gateway knows the same list of gateways and hashes a program id onto the same ring, so
each program has one owning gateway and one row in one process table. A call (or a program
request) that reaches a gateway which does not own its program is forwarded, body and stream
as they are, to the owner; the owner answers it as if the client had called it. Engines are
shared by every gateway: each call carries its program's snapshot, so no engine needs a table.
A forwarded request carries ``X-Autellix-Forwarded`` (the sender's URL) and is always served
where it lands, so a disagreement about the ring can cost a wrong owner but never a loop; the
header counts only when it names one of the gateways.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Final

import httpx
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autellix_protocol.headers import HEADER_PROGRAM_ID

log = logging.getLogger("autellix.server.sharding")

HEADER_FORWARDED: Final = "X-Autellix-Forwarded"
"""Set on a forwarded request to the sender's URL: the receiver serves it without forwarding."""
CALL_PATHS: Final = ("/v1/chat/completions", "/v1/completions")
PROGRAMS_PATH: Final = "/v1/programs"
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)


class HashRing:
    """Consistent hashing of keys onto members, ``replicas`` virtual points per member.

    Adding or removing one of N members moves about 1/N of the keys.

    >>> ring = HashRing(["http://a", "http://b"])
    >>> ring.owner("program-1") == ring.owner("program-1")
    True
    """

    def __init__(self, members: Sequence[str], *, replicas: int = 128) -> None:
        if not members:
            raise ValueError("a hash ring needs at least one member")
        points = sorted((_hash(f"{m}#{i}"), m) for m in set(members) for i in range(replicas))
        self._hashes = [h for h, _ in points]
        self._members = [m for _, m in points]

    def owner(self, key: str) -> str:
        """The member that owns ``key``: the first point clockwise of its hash."""
        index = bisect.bisect(self._hashes, _hash(key)) % len(self._hashes)
        return self._members[index]


def _hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


class ShardRouter:
    """ASGI middleware: serve the programs this gateway owns, forward the others to their owner.

    Args:
        app: the gateway's app.
        gateways: base URL of every gateway (the same list on each).
        self_url: this gateway's URL in ``gateways``.
        timeout: seconds to connect to an owner and to wait for each piece of its answer.
    """

    def __init__(
        self, app: ASGIApp, *, gateways: Sequence[str], self_url: str, timeout: float = 600.0
    ) -> None:
        self.app = app
        self.ring = HashRing(gateways)
        self.members = frozenset(gateways)
        self.self_url = self_url
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get(HEADER_FORWARDED) in self.members:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        body = b""
        program_id = headers.get(HEADER_PROGRAM_ID) if path in CALL_PATHS else None
        if path.startswith(PROGRAMS_PATH + "/"):
            program_id = path.removeprefix(PROGRAMS_PATH + "/")
        elif path == PROGRAMS_PATH and scope["method"] == "POST":
            body = await _read_body(receive)
            program_id = _program_in(body)
        owner = self.ring.owner(program_id) if program_id else self.self_url
        if owner == self.self_url:
            await self.app(scope, _replay(body, receive) if body else receive, send)
            return
        if not body:
            body = await _read_body(receive)
        await self._forward(owner, scope, headers, body, send)

    async def _forward(
        self, owner: str, scope: Scope, headers: Headers, body: bytes, send: Send
    ) -> None:
        query = scope.get("query_string", b"").decode()
        url = f"{owner}{scope['path']}" + (f"?{query}" if query else "")
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        sent[HEADER_FORWARDED] = self.self_url
        request = self._client.build_request(scope["method"], url, headers=sent, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("owner gateway %s unreachable: %s", owner, exc)
            await _unavailable(send, owner)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode(), v.encode())
                        for k, v in response.headers.multi_items()
                        if k.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            log.warning("owner gateway %s failed mid-answer: %s", owner, exc)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read ``body`` once, then defers to ``receive``."""
    pending = [body]

    async def again() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return again


def _program_in(body: bytes) -> str | None:
    """The ``program_id`` a ``POST /v1/programs`` body names, if any."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return None
    program_id = value.get("program_id") if isinstance(value, dict) else None
    return program_id if isinstance(program_id, str) and program_id else None


async def _unavailable(send: Send, owner: str) -> None:
    payload = {
        "error": {
            "message": f"the gateway that owns this program ({owner}) is unreachable",
            "type": "service_unavailable",
            "code": "gateway_unavailable",
            "param": None,
        }
    }
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})
