"""The cache-aware balancer: engines' KV events decide, load breaks ties, retained stay."""

from __future__ import annotations

from autellix_backend.core import KVRetention, SchedulerConfig
from autellix_backend.routing import CacheAwareBalancer, EngineView, RouteRequest, make_balancer
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment


def test_longest_reported_prefix_wins_and_evictions_count() -> None:
    balancer = make_balancer("cache_aware")
    assert isinstance(balancer, CacheAwareBalancer)
    balancer.on_kv_event("e0", [1, 2], [])
    balancer.on_kv_event("e1", [1, 2, 3], [])
    engines = [EngineView("e0", 0), EngineView("e1", 2)]
    assert balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4)), engines) == "e1"
    # ...but not when it is more than max_load_gap (2) calls busier than the least loaded.
    busy = [EngineView("e0", 0), EngineView("e1", 3)]
    assert balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4)), busy) == "e0"
    balancer.on_kv_event("e1", [], [3, 2])  # e1 evicted its tail: now a tie on one block...
    balancer.on_kv_event("e0", [], [2])
    assert balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4)), engines) == "e0"  # ...by load


def test_a_program_whose_kv_is_retained_stays_on_that_engine() -> None:
    balancer = CacheAwareBalancer()
    balancer.on_kv_event("e0", [7, 8, 9], [])
    engines = [EngineView("e0", 0), EngineView("e1", 9, retained_program_ids=frozenset({"p"}))]
    assert balancer.choose(RouteRequest("p", 64, (7, 8, 9)), engines) == "e1"
    assert balancer.choose(RouteRequest("q", 64, (7, 8, 9)), engines) == "e0"
    unhealthy = [engines[0], EngineView("e1", 0, False, frozenset({"p"}))]
    assert balancer.choose(RouteRequest("p", 64, (7, 8, 9)), unhealthy) == "e0"


def test_in_the_simulator_calls_follow_the_engine_that_cached_their_prefix() -> None:
    # Each program's second call extends its first; with 2 engines, the second call must
    # land where the first one's blocks were stored (read from the KV cache's events).
    programs = []
    for i in range(6):
        pid = f"p{i}"
        first = CallSpec(f"{pid}/0", "m", (), (PromptSegment(f"{pid}:in", 320),), 16)
        history = (*first.prompt, PromptSegment(first.output_key, 16))
        second = CallSpec(
            f"{pid}/1", "m", (first.call_id,), (*history, PromptSegment(f"{pid}:r", 32)), 8, 5.0
        )
        programs.append(ProgramSpec(pid, 0.1 * i, (first, second), workload="test"))
    config = SimConfig(
        scheduler=SchedulerConfig(kv_retention=KVRetention.OFF),
        engine=EngineConfig(num_kv_blocks=512),
        num_engines=2,
        balancer="cache_aware",
    )
    result = run_simulation(programs, config)
    engine_of = {c.call_id: c.engine_id for c in result.calls}
    assert len({engine_of[f"p{i}/0"] for i in range(6)}) == 2  # first calls spread by load
    for i in range(6):
        assert engine_of[f"p{i}/1"] == engine_of[f"p{i}/0"]
    assert all(c.cached_tokens >= 320 for c in result.calls if c.call_id.endswith("/1"))
