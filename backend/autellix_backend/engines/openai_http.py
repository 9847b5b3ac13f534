"""Shared client for engines that speak the OpenAI HTTP API (aiohttp for calls, httpx, SSE).

``RemoteVLLMEngine`` and ``OpenAICompatEngine`` differ only in what they add to each request
body (the Autellix metadata, or a priority hint) and in where the call's service comes from.
The request goes to the server as the client sent it (streamed or not), and the server's own
objects come back in ``EngineChunk.event`` for the gateway to relay: tool calls, logprobs,
``n`` choices and vLLM's extensions reach the client as the server wrote them. A streamed
call always asks the server for usage (the table needs it); the usage chunk reaches the
client only when it asked for it too.

Calls go through a pooled keep-alive aiohttp session: it spends about a third of httpx's CPU
per request (BENCHMARKS.md, issue 14), which is most of the gateway's own cost per call.
Health probes, model listing and service reports, off the call path, use httpx.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx
import orjson

from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    EngineUsage,
    RequestKind,
    event_text,
)

log = logging.getLogger("autellix.engines.http")

_PATHS = {RequestKind.CHAT: "/v1/chat/completions", RequestKind.COMPLETION: "/v1/completions"}
_IDLE_S = 4.0
"""Seconds an idle pooled connection is kept: under uvicorn's (and so vLLM's) 5 s keep-alive,
so the gateway never reuses a connection the server is closing (a call would fail with
"Can not write request body" and take the engine out of rotation)."""
_READ_BUFFER = 1 << 22
"""aiohttp's read buffer; a streamed event (one line) may be up to twice this (logprobs)."""


class OpenAIHTTPEngine(EngineAdapter):
    """An OpenAI-compatible server reached over HTTP; its answers are relayed as they come.

    Args:
        engine_id: name in the gateway.
        base_url: server root, e.g. ``http://127.0.0.1:8001`` (a trailing ``/v1`` is accepted).
        model: model name sent to the server (default: the first one ``/v1/models`` lists).
        api_key: bearer token for the server, if it needs one.
        timeout: seconds to wait for connect and for each streamed piece.
        max_num_seqs: the server's batch size, only used to split ``load()``.
        serving_options: the OpenAI-layer flags the server runs with (``tool_call_parser``,
            ``reasoning_parser``...), as ``autellix serve`` was given them; recorded, since
            only the server's own command line can set them.
    """

    def __init__(
        self,
        *,
        engine_id: str,
        base_url: str,
        model: str = "",
        api_key: str | None = None,
        timeout: float = 600.0,
        max_num_seqs: int = 256,
        serving_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if timeout <= 0 or max_num_seqs < 1:
            raise ValueError("timeout and max_num_seqs must be positive")
        self.engine_id = engine_id
        self.model = model
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.max_num_seqs = max_num_seqs
        self.serving_options = dict(serving_options or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._call_timeout = aiohttp.ClientTimeout(
            total=None, connect=min(timeout, 10.0), sock_read=timeout
        )
        self._headers = headers
        self._client: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._live: set[str] = set()

    # Hooks ---------------------------------------------------------------------

    @abstractmethod
    def decorate(self, body: dict[str, Any], request: EngineRequest) -> dict[str, Any]:
        """The request body to send, with this engine kind's scheduling metadata."""

    async def service_of(self, request: EngineRequest, final: Mapping[str, Any]) -> float:
        """Engine seconds the call attained; 0.0 when the server cannot say."""
        return 0.0

    # Life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, headers=self._headers
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=_IDLE_S),
                timeout=self._call_timeout,
                headers={**self._headers, "Content-Type": "application/json"},
                read_bufsize=_READ_BUFFER,
            )
        if not self.model:
            self.model = await self._first_model()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        session, self._session = self._session, None
        if client is not None:
            await client.aclose()
        if session is not None:
            await session.close()

    async def health(self) -> bool:
        try:
            response = await self._require().get("/health", timeout=5.0)
        except (httpx.HTTPError, EngineError):
            return False
        return response.status_code == 200

    def load(self) -> EngineLoad:
        live = len(self._live)
        return EngineLoad(
            num_running=min(live, self.max_num_seqs),
            num_waiting=max(0, live - self.max_num_seqs),
        )

    async def abort(self, request_id: str) -> None:
        """Closing the stream is the abort: vLLM aborts a request whose client disconnects."""
        self._live.discard(request_id)

    # Calls ---------------------------------------------------------------------

    openai_native = True

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        session = self._session
        if session is None:
            raise EngineError(f"engine {self.engine_id} is not started")
        body = dict(request.body)
        body["model"] = body.get("model") or self.model
        streamed = bool(body.get("stream"))
        wants_usage = False
        if streamed:
            options = dict(body.get("stream_options") or {})
            wants_usage = bool(options.get("include_usage"))
            body["stream_options"] = {**options, "include_usage": True}
        body = self.decorate(body, request)
        self._live.add(request.request_id)
        url = self.base_url + _PATHS[request.kind]
        try:
            async with session.post(url, data=_dumps(body)) as response:
                if response.status >= 400:
                    detail = (await response.read()).decode(errors="replace")[:500]
                    if 400 <= response.status < 500 and response.status != 408:
                        # The engine is fine; it rejected this request (e.g. prompt too long).
                        raise ValueError(f"engine answered {response.status}: {detail}")
                    raise EngineError(
                        f"engine {self.engine_id} answered {response.status}: {detail}"
                    )
                events = self._events(response) if streamed else self._whole(response)
                async for chunk in self._chunks(request, events, wants_usage=wants_usage):
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineError(f"engine {self.engine_id} is unreachable: {exc!r}") from exc
        finally:
            self._live.discard(request.request_id)

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """The server-sent events of a streamed answer, as objects."""
        async for raw in response.content:
            line = raw.decode(errors="replace")
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            yield _parse(data, self.engine_id)

    async def _whole(self, response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """A non-streamed answer, as one object."""
        yield _parse(await response.read(), self.engine_id)

    async def _chunks(
        self,
        request: EngineRequest,
        events: AsyncIterator[dict[str, Any]],
        *,
        wants_usage: bool,
    ) -> AsyncIterator[EngineChunk]:
        finish_reason: str | None = None
        usage: Mapping[str, Any] | None = None
        final: dict[str, Any] = {}
        async for event in events:
            if event.get("kv_transfer_params"):
                final["kv_transfer_params"] = event["kv_transfer_params"]
            if isinstance(event.get("usage"), Mapping):
                usage = event["usage"]
            choices = event.get("choices") or ()
            for choice in choices:
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
            if choices or wants_usage:  # the usage-only chunk only when the client asked
                yield EngineChunk(text=event_text(event), event=_without_report(event))
        service = await self.service_of(request, final)
        yield EngineChunk(
            finish_reason=finish_reason or "stop",
            usage=_usage(usage, service),
            extra=final.get("kv_transfer_params", {}).get("autellix", {}) if final else {},
        )

    def _require(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineError(f"engine {self.engine_id} is not started")
        return self._client

    async def _first_model(self) -> str:
        try:
            response = await self._require().get("/v1/models")
            response.raise_for_status()
            models = response.json().get("data") or []
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(f"engine {self.engine_id}: cannot list models: {exc}") from exc
        if not models:
            raise EngineError(f"engine {self.engine_id} serves no model")
        return str(models[0]["id"])


def _dumps(body: Mapping[str, Any]) -> bytes:
    """The request body as JSON (orjson; the standard library for what orjson refuses, such
    as integers past 64 bits)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _parse(data: str | bytes, engine_id: str) -> dict[str, Any]:
    """One JSON object from the engine (orjson; the standard library for what orjson refuses,
    such as NaN, integers past 64 bits or bytes that are not UTF-8)."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise EngineError(f"engine {engine_id} sent malformed JSON: {text[:200]}") from exc
    if not isinstance(event, dict):
        raise EngineError(f"engine {engine_id} sent a non-object event")
    if "error" in event:
        raise EngineError(f"engine {engine_id} failed: {event['error']}")
    return event


def _without_report(event: dict[str, Any]) -> dict[str, Any]:
    """The object as the client sees it: the plugin's report stays with the gateway."""
    params = event.get("kv_transfer_params")
    if not isinstance(params, Mapping) or "autellix" not in params:
        return event
    rest = {k: v for k, v in params.items() if k != "autellix"}
    return {**event, "kv_transfer_params": rest or None}


def _usage(usage: Mapping[str, Any] | None, service: float) -> EngineUsage:
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    return EngineUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0,
        service=service,
    )
