"""A program's end reaches its engines: the KV they hold for it through a tool call is
released at once, whether the program is deleted or times out idle."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from autellix_backend.core import SchedulerConfig
from autellix_graph.protocol import HEADER_PROGRAM_ID
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL
from tests.server.conftest import LiveServer, sim_config

# A call that says a 30 s tool follows: its KV is held for the program's next call.
BODY = {
    "model": "sim",
    "messages": [{"role": "user", "content": "tool docs " * 200}],
    "max_tokens": 2,
    "vllm_xargs": {KEY_NEXT_TOOL: "search", KEY_AWAY_S: "30"},
}


def _held_kv(live: LiveServer) -> float:
    engine = live.engines[0]
    return float(live.run(engine.kv_usage))


def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.mark.parametrize("retention", ["dag", "off"])
def test_deleting_a_program_releases_the_kv_held_for_it(retention: str) -> None:
    live = LiveServer(
        sim_config(time_scale=0.0, scheduler=SchedulerConfig(kv_retention=retention))
    ).start()
    try:
        r = httpx.post(
            f"{live.url}/v1/chat/completions", json=BODY, headers={HEADER_PROGRAM_ID: "agent"}
        )
        assert r.status_code == 200, r.text
        if retention == "off":
            assert _held_kv(live) == 0  # nothing held: the call's blocks went back at its end
            return
        assert _held_kv(live) > 0  # the simulated clock stands still: only the end frees it
        assert httpx.delete(f"{live.url}/v1/programs/agent").status_code == 200
        assert _held_kv(live) == 0
    finally:
        live.stop()


def test_a_program_that_times_out_idle_releases_its_kv() -> None:
    config = sim_config(
        time_scale=0.0, scheduler=SchedulerConfig(kv_retention="dag"), idle_timeout_s=0.5
    )
    live = LiveServer(config).start()
    try:
        r = httpx.post(
            f"{live.url}/v1/chat/completions", json=BODY, headers={HEADER_PROGRAM_ID: "agent"}
        )
        assert r.status_code == 200, r.text
        assert _held_kv(live) > 0
        _until(lambda: httpx.get(f"{live.url}/v1/programs/agent").json()["state"] == "finished")
        assert _held_kv(live) == 0
    finally:
        live.stop()
