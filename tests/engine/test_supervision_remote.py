"""A remote engine that stops answering and comes back: the gateway fails its calls with 503
naming it, keeps serving on its other engine, probes it, and puts it back in rotation when it
answers again. The remote engine is a real Autellix service on loopback (it serves the
OpenAI API and ``/health`` as vLLM does), stopped and started again on the same port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from autellix_backend.server import EngineSpec, ServerConfig
from tests.server.conftest import LiveServer, sim_config

REMOTE = "remote-0"
LONG = {"model": "sim", "messages": [{"role": "user", "content": "go"}], "max_tokens": 3000}
SHORT_LOCAL = {"model": "local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _remote_engine() -> LiveServer:
    return LiveServer(sim_config(1, shutdown_grace_s=0.0)).start()


def test_remote_engine_that_goes_away_rejoins_when_it_answers_again() -> None:
    remote = _remote_engine()
    gateway = LiveServer(
        ServerConfig(
            engines=(
                EngineSpec(kind="remote_vllm", engine_id=REMOTE, url=remote.url, model="sim"),
                EngineSpec(kind="sim", engine_id="sim-local", model="local"),
            ),
            health_interval_s=0.2,
        ).validate()
    ).start()
    port = remote.port
    try:
        with gateway.client(timeout=60) as client, ThreadPoolExecutor(2) as pool:
            inflight = pool.submit(client.post, "/v1/chat/completions", json=LONG)
            _wait_for(lambda: _remote_inflight(client) == 1, what="the call on the remote engine")

            stopping = threading.Thread(target=remote.stop)
            stopping.start()
            answer = inflight.result(timeout=30)
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "engine_unavailable"
            assert REMOTE in answer.json()["error"]["message"]
            stopping.join(timeout=30)

            _wait_for(lambda: _details(client)["state"] == "failed", what="the remote leaving")
            assert client.get("/healthz").json()["status"] == "degraded"
            assert client.post("/v1/chat/completions", json=LONG).status_code == 503
            # The other engine keeps serving.
            assert client.post("/v1/chat/completions", json=SHORT_LOCAL).status_code == 200

            remote = LiveServer(sim_config(1, shutdown_grace_s=0.0), port=port).start()
            _wait_for(lambda: _details(client)["state"] == "healthy", what="the remote rejoining")
            again = client.post("/v1/chat/completions", json={**LONG, "max_tokens": 4})
            assert again.status_code == 200
            assert again.headers["X-Autellix-Engine-Id"] == REMOTE
            details = _details(client)
            assert details["num_restarts"] == 1 and details["last_error"]
            assert gateway.metric("autellix_engine_restarts_total", engine=REMOTE) == 1.0
            assert gateway.metric("autellix_engine_state", engine=REMOTE, state="healthy") == 1.0
    finally:
        gateway.stop()
        remote.stop()


def _details(client: httpx.Client) -> dict[str, Any]:
    details: dict[str, Any] = client.get("/healthz").json()["engine_details"][REMOTE]
    return details


def _remote_inflight(client: httpx.Client) -> int:
    return int(_details(client)["num_inflight_calls"])


def _wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
