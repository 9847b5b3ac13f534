"""A remote vLLM server running the Autellix scheduler plugin.

Start the server with ``--scheduler-cls autellix_integrations.vllm.AutellixScheduler`` (see
docs/engines.md). Each call's ``ProgramTag`` (ids and the program snapshot) is sent as
``vllm_xargs``; the server ranks it by that snapshot and keeps no program rows. Streamed
responses carry no service report, so the call's service is read from the plugin's side
channel (``report_url``, the server's ``AUTELLIX_REPORT_PORT``); with no ``report_url`` the
reported service is 0.

The server's KV cache usage (``vllm:kv_cache_usage_perc`` on its ``/metrics``) is read with
each health probe, for the tracing UI's Engines view.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from autellix_backend.engines.base import EngineError, EngineRequest, Notices
from autellix_backend.engines.kv_events import KVEventSource
from autellix_backend.engines.openai_http import OpenAIHTTPEngine, log
from autellix_backend.engines.vllm_xargs import vllm_xargs
from autellix_protocol.report import REPORT_KEY
from autellix_protocol.report import service_of as reported_service

KV_USAGE_METRIC = "vllm:kv_cache_usage_perc"
"""vLLM's gauge of the share of KV cache blocks in use (0..1), one sample per engine core."""


class RemoteVLLMEngine(OpenAIHTTPEngine):
    """``OpenAIHTTPEngine`` that sends program metadata as ``vllm_xargs``.

    Args:
        report_url: root of the plugin's report side channel, e.g. ``http://127.0.0.1:8101``.
        kv_events_endpoint: where the server publishes its KV events, e.g.
            ``tcp://vllm-host:5557`` for ``--kv-events-config '{"enable_kv_cache_events":
            true, "publisher": "zmq", "endpoint": "tcp://*:5557"}'`` (the ``cache_aware``
            balancer reads them).
        tokenizer: the server's tokenizer, a path or hub name (default: ``model``), to
            tokenize prompts as the server does.
        block_size: the server's KV block size (default: learned from its first event).
        **options: see ``OpenAIHTTPEngine``.
    """

    program_aware = True

    def __init__(
        self,
        *,
        report_url: str | None = None,
        kv_events_endpoint: str | None = None,
        tokenizer: str | None = None,
        block_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if report_url is not None and not report_url.startswith(("http://", "https://")):
            raise ValueError(f"report_url must be an http(s) URL, got {report_url!r}")
        if kv_events_endpoint is not None and "://" not in kv_events_endpoint:
            raise ValueError(
                f"kv_events_endpoint must be a ZMQ address, got {kv_events_endpoint!r}"
            )
        if block_size is not None and block_size < 1:
            raise ValueError("block_size must be positive")
        self.report_url = report_url.rstrip("/") if report_url else None
        self._notices = Notices(self.engine_id)
        self.kv_events_endpoint = kv_events_endpoint
        self.tokenizer = tokenizer
        self.block_size = block_size
        self._kv_usage: float | None = None

    async def health(self) -> bool:
        healthy = await super().health()
        if healthy:
            self._kv_usage = await self._read_kv_usage()
        return healthy

    def kv_event_source(self) -> KVEventSource | None:
        if self.kv_events_endpoint is None:
            return None
        return KVEventSource(
            endpoint=self.kv_events_endpoint,
            tokenizer=self.tokenizer or self.model,
            block_size=self.block_size,
            chat_template=self.serving_options.get("chat_template"),
        )

    def kv_usage(self) -> float | None:
        """KV cache usage at the last health probe (mean over the server's engine cores);
        None when the server exports no such metric."""
        return self._kv_usage

    async def _read_kv_usage(self) -> float | None:
        try:
            response = await self._require().get("/metrics", timeout=2.0)
        except (httpx.HTTPError, EngineError):
            return None
        return kv_usage_of(response.text) if response.status_code == 200 else None

    def decorate(self, body: dict[str, Any], request: EngineRequest) -> dict[str, Any]:
        return {**body, "vllm_xargs": vllm_xargs(body, request.tag)}

    def end_program(self, program_id: str) -> None:
        """Tell the plugin the program ended (``POST /programs/<id>/end`` on the report
        channel), so it releases the program's held KV at once; without ``report_url`` the
        hold ends on its TTL."""
        if self.report_url is None or self._client is None:
            return
        url = f"{self.report_url}/programs/{quote(program_id, safe='')}/end"
        self._notices.send(self._client.post(url, timeout=2.0), "program-end notice")

    async def service_of(self, request: EngineRequest, final: Mapping[str, Any]) -> float:
        reported = reported_service((final.get("kv_transfer_params") or {}).get(REPORT_KEY))
        if reported is not None:
            return reported
        if self.report_url is None or self._client is None:
            return 0.0
        url = f"{self.report_url}/calls/{request.tag.call_id or request.request_id}"
        for attempt in range(3):
            try:
                response = await self._client.get(url, timeout=2.0)
            except httpx.HTTPError as exc:
                log.warning("engine %s: no service report (%s)", self.engine_id, exc)
                return 0.0
            if response.status_code == 200:
                return reported_service(response.json()) or 0.0
            await asyncio.sleep(0.05 * (attempt + 1))
        return 0.0


def kv_usage_of(metrics: str) -> float | None:
    """The mean of ``KV_USAGE_METRIC``'s samples in a Prometheus text page, or None."""
    values = []
    for line in metrics.splitlines():
        if not line.startswith(KV_USAGE_METRIC):
            continue
        rest = line[len(KV_USAGE_METRIC) :]
        if rest.startswith("{") and "}" in rest:
            rest = rest[rest.rindex("}") + 1 :]
        elif not rest.startswith(" "):
            continue  # another metric whose name starts the same
        with contextlib.suppress(ValueError, IndexError):
            values.append(float(rest.split()[0]))
    return sum(values) / len(values) if values else None
