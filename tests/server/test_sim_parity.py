"""``autellix serve --engine sim`` (time_scale 0) schedules programs as ``autellix bench``'s
simulator does: same per-program completion order, latencies within 5%.

The replay goes through the gateway over HTTP on loopback; the engine runs in lockstep with
the replay (it holds after every step that ends a call, until the calls that this unblocks
have been sent), so the calls reach it at the simulated times the simulator gives them.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from autellix_backend.spec import CallSpec, ProgramSpec, PromptSegment
from autellix_protocol.headers import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer

SCHEDULER = SchedulerConfig(policy=Policy.PLAS, starvation_beta=None)
"""Anti-starvation off: the gateway measures waits in wall time, the simulator in its own."""
ENGINE: dict[str, Any] = {"max_num_seqs": 2, "enable_prefix_caching": False}

# (prompt tokens, output tokens) of each program's chain of calls; all arrive at t=0.
CHAINS = {
    "a": [(64, 120), (32, 40)],
    "b": [(200, 30)],
    "c": [(48, 60), (48, 60), (16, 10)],
    "d": [(96, 200)],
    "e": [(24, 15), (120, 90)],
    "f": [(300, 5)],
}


def _programs() -> list[ProgramSpec]:
    programs = []
    for name, chain in CHAINS.items():
        calls = []
        for i, (prompt, output) in enumerate(chain):
            parents = (f"{name}{i - 1}",) if i else ()
            segment = PromptSegment(f"{name}{i}:prompt", prompt)
            calls.append(CallSpec(f"{name}{i}", "main", parents, (segment,), output))
        programs.append(ProgramSpec(name, 0.0, tuple(calls)))
    return programs


def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _replay(live: LiveServer) -> dict[str, float]:
    """Each program's finish time on the engine's simulated clock."""
    engine = live.engine("sim-0")

    def setup() -> None:
        engine.hold_on_finish = True
        engine.hold()

    def num_calls() -> int:
        return int(live.run(lambda: engine.load().num_calls))

    live.run(setup)
    client = httpx.Client(base_url=live.url, timeout=60)
    next_call = dict.fromkeys(CHAINS, 0)
    finished: dict[str, float] = {}
    inflight: dict[str, Future[httpx.Response]] = {}
    with ThreadPoolExecutor(len(CHAINS)) as pool:

        def send(name: str) -> None:
            """One call, admitted before the next is sent: the engine sees the same order."""
            prompt, output = CHAINS[name][next_call[name]]
            body = {"model": "sim", "prompt": "abcd" * prompt, "max_tokens": output}
            headers = {HEADER_PROGRAM_ID: name}
            expected = num_calls() + 1
            inflight[name] = pool.submit(client.post, "/v1/completions", json=body, headers=headers)
            _wait(lambda: num_calls() == expected, f"admission of {name}")

        def answered(count: int) -> bool:
            return sum(f.done() for f in inflight.values()) >= count

        for name in CHAINS:  # the simulator releases roots in arrival order
            send(name)
        seen = 0
        while inflight:
            live.run(engine.release)
            _wait(lambda: live.run(lambda: engine.held), "a step that ends calls")
            ended = live.run(lambda: list(engine.finished_ids))[seen:]
            seen += len(ended)
            clock = live.run(lambda: engine.clock)
            _wait(functools.partial(answered, len(ended)), "answers")
            done = {f.result().json()["id"]: n for n, f in inflight.items() if f.done()}
            for request_id in ended:  # in the engine's order, as the simulator releases them
                name = done[request_id]
                del inflight[name]
                next_call[name] += 1
                if next_call[name] < len(CHAINS[name]):
                    send(name)
                else:
                    finished[name] = clock
    client.close()
    return finished


@pytest.mark.slow
def test_serve_sim_completes_programs_like_the_bench_simulator(serve: Any) -> None:
    spec = EngineSpec(
        kind="sim", engine_id="sim-0", model="sim", options={"time_scale": 0.0, **ENGINE}
    )
    live = serve(ServerConfig(engines=(spec,), scheduler=SCHEDULER).validate())
    served = _replay(live)
    simulated = run_simulation(
        _programs(), SimConfig(scheduler=SCHEDULER, engine=EngineConfig(**ENGINE))
    )
    bench = {p.program_id: p.latency for p in simulated.programs}
    assert sorted(served, key=served.__getitem__) == sorted(bench, key=bench.__getitem__)
    for name, latency in bench.items():  # in practice they agree to the last digit
        assert served[name] == pytest.approx(latency, rel=0.05), name
