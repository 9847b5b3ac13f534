"""Several engines behind the balancer: one fails, its calls get 503, the others keep serving;
a client that leaves aborts its engine request."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx

from autellix_backend.server import EngineSpec, ServerConfig
from autellix_backend.server.pool import MAX_PROBE_TIMEOUTS
from tests.server.conftest import LiveServer, sim_config

LONG = {"model": "sim", "messages": [{"role": "user", "content": "go"}], "max_tokens": 400}
SHORT = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _calls_on(live: LiveServer, engine_id: str) -> int:
    engine = live.engine(engine_id)
    return int(live.run(lambda: engine.load().num_calls))


def test_failed_engine_leaves_rotation_and_its_calls_get_503(serve: Any) -> None:
    live: LiveServer = serve(sim_config(2, balancer="round_robin", health_interval_s=0.2))
    with ThreadPoolExecutor(4) as pool, httpx.Client(base_url=live.url, timeout=60) as client:
        futures = [pool.submit(client.post, "/v1/chat/completions", json=LONG) for _ in range(4)]
        _wait_for(lambda: _calls_on(live, "sim-0") == 2 and _calls_on(live, "sim-1") == 2)
        live.run(live.engine("sim-0").fail, "GPU fell off the bus")
        results = [f.result() for f in futures]
        # The other engine keeps serving, new calls included.
        later = [client.post("/v1/chat/completions", json=SHORT) for _ in range(4)]
        health = client.get("/healthz").json()

    failed = [r for r in results if r.status_code == 503]
    served = [r for r in results if r.status_code == 200]
    assert len(failed) == 2 and len(served) == 2
    assert all(r.json()["error"]["code"] == "engine_unavailable" for r in failed)
    assert "GPU fell off the bus" in failed[0].json()["error"]["message"]
    assert {r.headers["X-Autellix-Engine-Id"] for r in served} == {"sim-1"}
    assert all(r.status_code == 200 and r.headers["X-Autellix-Engine-Id"] == "sim-1" for r in later)
    assert health["status"] == "degraded" and health["engines"] == {"sim-0": False, "sim-1": True}
    assert live.metric("autellix_engine_healthy", engine="sim-0") == 0.0
    assert live.metric("autellix_engine_failures_total", engine="sim-0") == 1.0

    live.run(live.engine("sim-0").recover)
    _wait_for(lambda: httpx.get(f"{live.url}/healthz").json()["status"] == "ok")


def test_all_engines_down_is_503(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1, health_interval_s=0.2))
    live.run(live.engine("sim-0").fail, "down for maintenance")
    _wait_for(lambda: httpx.get(f"{live.url}/healthz").status_code == 503)
    r = httpx.post(f"{live.url}/v1/chat/completions", json=SHORT)
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "engine_unavailable"


def test_client_that_disconnects_aborts_its_engine_request(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1))
    for stream in (False, True):
        aborted = _aborted(live)
        body = json.dumps({**LONG, "max_tokens": 5000, "stream": stream}).encode()
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as conn:
            conn.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            _wait_for(lambda: _calls_on(live, "sim-0") == 1)
            if stream:
                assert conn.recv(64).startswith(b"HTTP/1.1 200")
        # The connection closed mid-call: the engine request is aborted and its cache freed.
        _wait_for(lambda: _calls_on(live, "sim-0") == 0, timeout=5)
        _wait_for(partial(_aborted_reaches, live, aborted + 1), timeout=5)


def _aborted(live: LiveServer) -> float:
    return live.metric("autellix_calls_total", engine="sim-0", outcome="aborted")


def _aborted_reaches(live: LiveServer, count: float) -> bool:
    return _aborted(live) == count


def test_a_busy_engine_whose_probe_times_out_keeps_serving(serve: Any) -> None:
    """A probe that times out (a loaded CPU engine) must not fail the calls in flight; only
    MAX_PROBE_TIMEOUTS timeouts in a row take the engine out of rotation.

    The test decides each probe's outcome and waits for the pool to have acted on it (the
    next probe has started), so nothing depends on how fast the machine is."""
    live: LiveServer = serve(sim_config(1, health_interval_s=0.05, health_timeout_s=60))
    engine = live.engine("sim-0")
    outcomes: asyncio.Queue[str] = live.run(asyncio.Queue)
    started: list[int] = []

    async def scripted_probe() -> bool:
        started.append(1)
        if await outcomes.get() == "timeout":
            raise TimeoutError  # what asyncio.wait_for raises for a probe past its timeout
        return True

    def probe(outcome: str) -> None:
        """Answer the waiting probe; return once the pool has taken it in."""
        count = len(started)
        live.run(outcomes.put_nowait, outcome)
        _wait_for(lambda: len(started) > count)

    real_probe = engine.health
    with httpx.Client(base_url=live.url, timeout=60) as client:
        live.run(setattr, engine, "health", scripted_probe)
        _wait_for(lambda: len(started) > 0)
        for outcome in ("timeout", "timeout", "ok", "timeout", "timeout"):
            probe(outcome)
            # Never three timeouts in a row: the engine stays in rotation and serves.
            assert client.get("/healthz").json()["engines"] == {"sim-0": True}
            assert client.post("/v1/chat/completions", json=SHORT).status_code == 200
        assert MAX_PROBE_TIMEOUTS == 3
        live.run(outcomes.put_nowait, "timeout")
        _wait_for(lambda: client.get("/healthz").status_code == 503)
        # A probe that answers brings it back.
        live.run(setattr, engine, "health", real_probe)
        live.run(outcomes.put_nowait, "ok")
        _wait_for(lambda: client.get("/healthz").status_code == 200)


def test_an_openai_engine_without_a_model_serves_the_one_its_server_lists() -> None:
    """``model`` left out of an OpenAI-compatible engine: the adapter learns the server's
    first model when it starts, and the gateway routes calls for that model to it (the pool
    indexed engines by model before they had started, so such calls were a 404)."""
    engine = LiveServer(sim_config(time_scale=0.0)).start()
    spec = EngineSpec(kind="openai", engine_id="upstream", url=engine.url)
    gateway = LiveServer(ServerConfig(engines=(spec,)).validate()).start()
    try:
        assert httpx.get(f"{gateway.url}/v1/models").json()["data"][0]["id"] == "sim"
        r = httpx.post(f"{gateway.url}/v1/chat/completions", json=SHORT, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 2
    finally:
        gateway.stop()
        engine.stop()
