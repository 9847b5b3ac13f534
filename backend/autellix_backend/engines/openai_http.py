"""Shared streaming client for engines that speak the OpenAI HTTP API (httpx, SSE).

``RemoteVLLMEngine`` and ``OpenAICompatEngine`` differ only in what they add to each request
body (the Autellix metadata, or a priority hint) and in where the call's service comes from.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    EngineUsage,
    RequestKind,
)

log = logging.getLogger("autellix.engines.http")

_PATHS = {RequestKind.CHAT: "/v1/chat/completions", RequestKind.COMPLETION: "/v1/completions"}


class OpenAIHTTPEngine(EngineAdapter):
    """An OpenAI-compatible server reached over HTTP; every call is streamed.

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
        self._headers = headers
        self._client: httpx.AsyncClient | None = None
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
        if not self.model:
            self.model = await self._first_model()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

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

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        client = self._require()
        body = dict(request.body)
        body["model"] = body.get("model") or self.model
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        body = self.decorate(body, request)
        self._live.add(request.request_id)
        try:
            async with client.stream("POST", _PATHS[request.kind], json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    if 400 <= response.status_code < 500 and response.status_code != 408:
                        # The engine is fine; it rejected this request (e.g. prompt too long).
                        raise ValueError(f"engine answered {response.status_code}: {detail}")
                    raise EngineError(
                        f"engine {self.engine_id} answered {response.status_code}: {detail}"
                    )
                async for chunk in self._chunks(request, response):
                    yield chunk
        except httpx.HTTPError as exc:
            raise EngineError(f"engine {self.engine_id} is unreachable: {exc}") from exc
        finally:
            self._live.discard(request.request_id)

    async def _chunks(
        self, request: EngineRequest, response: httpx.Response
    ) -> AsyncIterator[EngineChunk]:
        finish_reason: str | None = None
        usage: Mapping[str, Any] | None = None
        final: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = _parse(data, self.engine_id)
            if event.get("kv_transfer_params"):
                final["kv_transfer_params"] = event["kv_transfer_params"]
            if isinstance(event.get("usage"), Mapping):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                text = _choice_text(choice)
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
                if text:
                    yield EngineChunk(text=text)
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


def _parse(data: str, engine_id: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise EngineError(f"engine {engine_id} sent malformed JSON: {data[:200]}") from exc
    if not isinstance(event, dict):
        raise EngineError(f"engine {engine_id} sent a non-object event")
    if "error" in event:
        raise EngineError(f"engine {engine_id} failed: {event['error']}")
    return event


def _choice_text(choice: Mapping[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, Mapping):
        return str(delta.get("content") or "")
    return str(choice.get("text") or "")


def _usage(usage: Mapping[str, Any] | None, service: float) -> EngineUsage:
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    return EngineUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0,
        service=service,
    )
