"""The gateway's process table is the one owner of program state; engines rank by its snapshots.

Real HTTP on loopback against simulated engines (A100 cost model in real time).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from autellix_backend.server import EngineSpec, ServerConfig
from autellix_protocol.headers import HEADER_ENGINE_ID, HEADER_PROGRAM_ID
from tests.server.conftest import sim_config


def _chat(max_tokens: int, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "sim",
        "messages": [{"role": "user", "content": "Plan the next step."}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


def test_a_streamed_call_the_client_aborts_keeps_the_service_it_consumed(serve: Any) -> None:
    live = serve(sim_config(1))
    headers = {HEADER_PROGRAM_ID: "retrier"}
    with live.client() as client:
        with client.stream(
            "POST", "/v1/chat/completions", json=_chat(4000, stream=True), headers=headers
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            received = sum(1 for _, line in zip(range(60), lines, strict=False) if line)
        assert received >= 30  # the client leaves mid-answer
        deadline = time.monotonic() + 5
        while True:
            row = client.get("/v1/programs/retrier").json()
            if row["num_active_calls"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [c["status"] for c in row["calls"]] == ["aborted"]
        # The aborted call's service counts: a retry does not start at top priority.
        assert row["service"] > 0 and row["total_service"] == row["service"]
        retry = client.post("/v1/chat/completions", json=_chat(2), headers=headers)
        assert retry.status_code == 200
        calls = client.get("/v1/programs/retrier").json()["calls"]
        assert calls[-1]["priority"] == row["service"]


def test_two_engines_round_robin_rank_one_program_by_its_global_service(serve: Any) -> None:
    engines = tuple(
        EngineSpec(
            kind="sim",
            engine_id=f"sim-{i}",
            model="sim",
            options={"time_scale": 1.0, "max_num_seqs": 1},
        )
        for i in range(2)
    )
    live = serve(ServerConfig(engines=engines, balancer="round_robin").validate())
    long_program = {HEADER_PROGRAM_ID: "long"}
    with live.client() as client:
        placed = []
        for _ in range(4):  # its service accrues on both engines in turn
            r = client.post("/v1/chat/completions", json=_chat(40), headers=long_program)
            placed.append(r.headers[HEADER_ENGINE_ID])
        assert sorted(placed) == ["sim-0", "sim-0", "sim-1", "sim-1"]
        service = client.get("/v1/programs/long").json()["service"]
        assert service > 0

        finished: dict[str, float] = {}

        def call(name: str, program: str, max_tokens: int, delay: float) -> str:
            time.sleep(delay)
            with httpx.Client(base_url=live.url, timeout=60) as own:
                r = own.post(
                    "/v1/chat/completions",
                    json=_chat(max_tokens),
                    headers={HEADER_PROGRAM_ID: program},
                )
            finished[name] = time.monotonic()
            assert r.status_code == 200
            return r.headers[HEADER_ENGINE_ID]

        with ThreadPoolExecutor(4) as pool:
            # The long program's two calls take both engines; a fresh program's two calls
            # arrive once both are in, one on each engine.
            longs = [pool.submit(call, f"long-{i}", "long", 300, 0.0) for i in range(2)]
            deadline = time.monotonic() + 30
            while client.get("/v1/programs/long").json()["num_active_calls"] < 2:
                assert time.monotonic() < deadline, "the long calls never both arrived"
                time.sleep(0.01)
            shorts = [pool.submit(call, f"short-{i}", f"short-{i}", 4, 0.0) for i in range(2)]
            long_engines = sorted(f.result() for f in longs)
            short_engines = sorted(f.result() for f in shorts)
    assert long_engines == short_engines == ["sim-0", "sim-1"]
    # On either engine the fresh program overtakes the long one, whose service sits mostly
    # on the other engine's past work: both short calls end before either long call.
    assert max(finished["short-0"], finished["short-1"]) < min(
        finished["long-0"], finished["long-1"]
    )
