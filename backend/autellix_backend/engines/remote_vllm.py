"""A remote vLLM server running the Autellix scheduler plugin.

Start the server with ``--scheduler-cls autellix_integrations.vllm.AutellixScheduler`` (see
docs/engines.md). Each call's ``ProgramTag`` is sent as ``vllm_xargs``; the server schedules
it with the core. Streamed responses carry no service report, so the call's service is read
from the plugin's side channel (``report_url``, the server's ``AUTELLIX_REPORT_PORT``). With
no ``report_url`` the tag is sent without ``autellix_service``: the engine's own table then
sets the program's priority (right for one engine), and the reported service is 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from autellix_backend.engines.base import EngineRequest
from autellix_backend.engines.openai_http import OpenAIHTTPEngine, log

SERVICE_KEY = "autellix_service"


class RemoteVLLMEngine(OpenAIHTTPEngine):
    """``OpenAIHTTPEngine`` that sends program metadata as ``vllm_xargs``.

    Args:
        report_url: root of the plugin's report side channel, e.g. ``http://127.0.0.1:8101``.
        **options: see ``OpenAIHTTPEngine``.
    """

    program_aware = True

    def __init__(self, *, report_url: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        if report_url is not None and not report_url.startswith(("http://", "https://")):
            raise ValueError(f"report_url must be an http(s) URL, got {report_url!r}")
        self.report_url = report_url.rstrip("/") if report_url else None

    def decorate(self, body: dict[str, Any], request: EngineRequest) -> dict[str, Any]:
        xargs: dict[str, Any] = dict(body.get("vllm_xargs") or {})
        tag = request.tag.as_xargs()
        if self.report_url is None:
            tag.pop(SERVICE_KEY, None)
        xargs.update(tag)
        return {**body, "vllm_xargs": xargs}

    async def service_of(self, request: EngineRequest, final: Mapping[str, Any]) -> float:
        report = (final.get("kv_transfer_params") or {}).get("autellix")
        if isinstance(report, Mapping):
            return float(report.get("service", 0.0))
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
                return float(response.json().get("service", 0.0))
            await asyncio.sleep(0.05 * (attempt + 1))
        return 0.0
