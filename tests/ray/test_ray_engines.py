"""Engines as Ray actors: a local Ray instance inside the test, two simulated-engine actors.

Programs run through both actors with their snapshots and reports crossing the actor calls;
killing one actor mid-run (``ray.kill``, then SIGKILL of its process) ends only its calls in
flight, with 503 ``engine_unavailable``; Ray restarts it and it rejoins the rotation.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests._deps import require

require("ray", install="pip install 'autellix[ray]'")

import ray  # noqa: E402

from autellix_backend.core import SchedulerConfig  # noqa: E402
from autellix_backend.engines.ray_engine import NAMESPACE  # noqa: E402
from autellix_backend.server import EngineSpec, ServerConfig  # noqa: E402
from tests.server.conftest import LiveServer  # noqa: E402


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveServer]:
    ray.init(num_cpus=2, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    engines = tuple(
        EngineSpec(
            kind="sim",
            engine_id=f"ray-sim-{i}",
            model="sim",
            options={"time_scale": 0.5},
            placement="ray",
            resources={"CPU": 1},
        )
        for i in range(2)
    )
    config = ServerConfig(
        engines=engines,
        # dag: holds only for a call whose vllm_xargs say a tool follows (one test's call)
        scheduler=SchedulerConfig(kv_retention="dag"),
        balancer="round_robin",
        health_interval_s=0.3,
        restart_backoff_s=0.2,
        restart_backoff_max_s=1.0,
    ).validate()
    live = LiveServer(config).start(timeout=120)
    try:
        yield live
    finally:
        live.stop()
        ray.shutdown()


def _call(url: str, program: str, max_tokens: int = 8) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/completions",
        json={"model": "sim", "prompt": f"{program}: go on", "max_tokens": max_tokens},
        headers={"X-Autellix-Program-Id": program},
        timeout=60,
    )


def _wait_healthy(url: str, engine_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/healthz", timeout=10).json()
        if health["engines"].get(engine_id):
            return dict(health)
        time.sleep(0.2)
    raise AssertionError(f"{engine_id} did not rejoin the rotation: {health}")


def _wait_in_flight(url: str, expected: dict[str, int], timeout: float = 30.0) -> None:
    """Until the gateway has the ``expected`` calls in flight on each engine (not a sleep:
    under load the calls take longer to reach their engines)."""
    deadline = time.monotonic() + timeout
    while True:
        details = httpx.get(f"{url}/healthz", timeout=10).json()["engine_details"]
        inflight = {e: details[e]["num_inflight_calls"] for e in expected}
        if inflight == expected:
            return
        assert time.monotonic() < deadline, f"calls in flight: {inflight}, expected {expected}"
        time.sleep(0.05)


def test_programs_run_on_both_actors_and_their_service_comes_back(gateway: LiveServer) -> None:
    used = set()
    for i in range(4):
        response = _call(gateway.url, f"ray-program-{i}")
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] == 8
        used.add(response.headers["X-Autellix-Engine-Id"])
    assert used == {"ray-sim-0", "ray-sim-1"}
    row = httpx.get(f"{gateway.url}/v1/programs/ray-program-0", timeout=10).json()
    assert row["total_service"] > 0, "the actor's service report reached the table"


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_a_killed_actor_loses_only_its_calls_and_comes_back(gateway: LiveServer, how: str) -> None:
    _wait_healthy(gateway.url, "ray-sim-0")
    _wait_healthy(gateway.url, "ray-sim-1")
    actor = ray.get_actor("autellix-ray-sim-0", namespace=NAMESPACE)
    pid: Any = ray.get(actor.pid.remote())
    programs = [f"{how}-long-{i}" for i in range(6)]
    with ThreadPoolExecutor(len(programs)) as pool:
        futures = [pool.submit(_call, gateway.url, p, 400) for p in programs]
        _wait_in_flight(gateway.url, {"ray-sim-0": 3, "ray-sim-1": 3})  # ~6 s of work each
        if how == "ray.kill":
            ray.kill(actor, no_restart=False)
        else:
            os.kill(pid, signal.SIGKILL)
        responses = [f.result() for f in futures]
    failed = [r for r in responses if r.status_code != 200]
    served = [r for r in responses if r.status_code == 200]
    assert len(failed) == len(served) == 3, [r.status_code for r in responses]
    for response in failed:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "engine_unavailable"
    for response in served:
        assert response.headers["X-Autellix-Engine-Id"] == "ray-sim-1"
        assert response.json()["usage"]["completion_tokens"] == 400
    health = _wait_healthy(gateway.url, "ray-sim-0")
    assert health["engines"] == {"ray-sim-0": True, "ray-sim-1": True}
    assert ray.get(ray.get_actor("autellix-ray-sim-0", namespace=NAMESPACE).pid.remote()) != pid
    served = {
        _call(gateway.url, f"{how}-after-{i}").headers["X-Autellix-Engine-Id"] for i in range(4)
    }
    assert "ray-sim-0" in served, "the restarted actor is back in rotation"


def test_a_client_that_leaves_mid_stream_closes_the_actors_stream(gateway: LiveServer) -> None:
    _wait_healthy(gateway.url, "ray-sim-0")
    _wait_healthy(gateway.url, "ray-sim-1")
    body = {"model": "sim", "prompt": "leaver: go on", "max_tokens": 4000, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/completions",
        json=body,
        headers={"X-Autellix-Program-Id": "leaver"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        engine_id = response.headers["X-Autellix-Engine-Id"]
        actor = ray.get_actor(f"autellix-{engine_id}", namespace=NAMESPACE)
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break
        assert ray.get(actor.num_streams.remote()) == 1, "the call streams from the actor"
    deadline = time.monotonic() + 30  # 4,000 tokens take about a minute at this time scale
    while ray.get(actor.num_streams.remote()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.get(actor.num_streams.remote()) == 0, "the aborted call's stream is still open"


def test_a_programs_end_reaches_the_actors_engine(gateway: LiveServer) -> None:
    """Deleting a program releases the KV its actor's engine holds for it through a tool."""
    _wait_healthy(gateway.url, "ray-sim-0")
    _wait_healthy(gateway.url, "ray-sim-1")
    body = {
        "model": "sim",
        "prompt": "tool docs " * 300,
        "max_tokens": 2,
        "vllm_xargs": {"autellix_next_tool": "search", "autellix_away_s": "30"},
    }
    headers = {"X-Autellix-Program-Id": "ray-tool-agent"}
    r = httpx.post(f"{gateway.url}/v1/completions", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    actor = ray.get_actor(f"autellix-{r.headers['X-Autellix-Engine-Id']}", namespace=NAMESPACE)
    assert ray.get(actor.kv_usage.remote()) > 0, "the call's KV should be held for the tool"
    assert httpx.delete(f"{gateway.url}/v1/programs/ray-tool-agent", timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while ray.get(actor.kv_usage.remote()) > 0:
        assert time.monotonic() < deadline, "the hold outlived its program"
        time.sleep(0.05)
