"""run_simulation end to end: prefix reuse, determinism, multiple engines, bad input."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from autellix_backend.core import InvalidCallError, SchedulerConfig, UnknownProfileError
from autellix_backend.routing import UnknownBalancerError
from autellix_backend.sim import EngineConfig, SimConfig, SimResult, run_simulation
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment
from tests.sim.conftest import chain_program, went_to_a_least_used_engine


def chat_workload(num_programs: int, rate: float, seed: int = 0) -> list[ProgramSpec]:
    rng = random.Random(seed)
    now = 0.0
    programs = []
    for i in range(num_programs):
        now += rng.expovariate(rate)
        lengths = [rng.randint(5, 200) for _ in range(rng.randint(1, 5))]
        programs.append(
            chain_program(
                f"p{i}",
                lengths,
                arrival=now,
                prompt_tokens=rng.randint(10, 300),
                shared_prefix=64,
                delay=rng.uniform(0, 1),
            )
        )
    return programs


def test_a_later_call_reuses_its_program_history_from_the_prefix_cache() -> None:
    program = chain_program("p", [40, 10], prompt_tokens=100, shared_prefix=64)
    result = run_simulation([program], SimConfig(engine=EngineConfig(block_size=16)))
    cached = {c.call_id: c.cached_tokens for c in result.calls}
    assert cached["p/0"] == 0
    # System prompt, first input and first output: 64 + 100 + 40 = 204 tokens, 12 full blocks.
    assert cached["p/1"] == 192
    assert 0 < result.engines[0].prefix_hit_rate < 1


def test_without_prefix_caching_nothing_is_reused() -> None:
    program = chain_program("p", [40, 10], prompt_tokens=100, shared_prefix=64)
    config = SimConfig(engine=EngineConfig(enable_prefix_caching=False))
    result = run_simulation([program], config)
    assert all(c.cached_tokens == 0 for c in result.calls)


def test_a_run_is_deterministic() -> None:
    programs = chat_workload(40, rate=4.0)
    config = SimConfig(
        scheduler=SchedulerConfig(policy="plas"), engine=EngineConfig(max_num_seqs=8)
    )
    first = run_simulation(programs, config).to_json()
    assert run_simulation(programs, config).to_json() == first


def test_every_program_and_call_finishes_with_its_tokens() -> None:
    programs = chat_workload(30, rate=5.0)
    for policy in ("fcfs", "mlfq", "plas", "atlas", "atlas_exact", "srpt"):
        config = SimConfig(
            scheduler=SchedulerConfig(policy=policy),
            engine=EngineConfig(max_num_seqs=4, num_kv_blocks=400),
        )
        result = run_simulation(programs, config)
        assert len(result.programs) == len(programs)
        by_call = {c.call_id: c for c in result.calls}
        assert len(by_call) == len(result.calls) == sum(p.num_calls for p in programs)
        for spec in (c for p in programs for c in p.calls):
            assert by_call[spec.call_id].output_tokens == spec.output_tokens
            for parent in spec.parent_ids:
                assert by_call[parent].finish_time <= by_call[spec.call_id].arrival_time


def test_multi_threaded_calls_wait_for_all_their_parents() -> None:
    root = CallSpec("root", "main", (), (PromptSegment("task", 50),), 20)
    left = CallSpec("left", "t1", ("root",), (PromptSegment("task", 50),), 80)
    right = CallSpec("right", "t2", ("root",), (PromptSegment("task", 50),), 5)
    join = CallSpec("join", "main", ("left", "right"), (PromptSegment("task", 50),), 10, 0.5)
    program = ProgramSpec("tree", 0.0, (root, left, right, join))
    result = run_simulation([program], SimConfig())
    calls = {c.call_id: c for c in result.calls}
    assert calls["join"].arrival_time == pytest.approx(calls["left"].finish_time + 0.5)
    assert result.programs[0].finish_time == calls["join"].finish_time
    assert result.programs[0].output_tokens == 115


def test_locality_keeps_long_calls_home_and_sends_short_ones_to_the_least_used_engine() -> None:
    programs = [
        chain_program(f"p{i}", [20, 20, 20, 20], arrival=i * 0.01, prompt_tokens=1200)
        for i in range(12)
    ]
    config = SimConfig(num_engines=4, balancer="locality", locality_threshold=2048)
    result = run_simulation(programs, config)
    assert sum(e.num_calls for e in result.engines) == 48
    long_engines: dict[str, set[str]] = {}
    short = [c for c in result.calls if c.prompt_tokens <= 2048]
    for call in result.calls:
        if call.prompt_tokens > 2048:
            long_engines.setdefault(call.program_id, set()).add(call.engine_id)
    # Each program's first call (1,200 tokens) is short; the later ones carry its history.
    assert len(short) == 12 and len(long_engines) == 12
    assert all(len(e) == 1 for e in long_engines.values())
    assert all(went_to_a_least_used_engine(c, result.calls) for c in short)
    # Twelve programs arriving 10 ms apart, none finished yet: three first calls per engine.
    assert Counter(c.engine_id for c in short) == {f"engine-{i}": 3 for i in range(4)}


def _in_arrival_order(result: SimResult) -> list[str]:
    return [c.engine_id for c in sorted(result.calls, key=lambda c: c.arrival_time)]


def test_round_robin_takes_the_engines_in_turn() -> None:
    programs = chat_workload(30, rate=10.0, seed=3)
    result = run_simulation(programs, SimConfig(num_engines=3, balancer="round_robin"))
    order = _in_arrival_order(result)
    assert len({c.arrival_time for c in result.calls}) == len(order)  # a well-defined order
    assert order == [order[i % 3] for i in range(len(order))]
    assert len(set(order[:3])) == 3


@pytest.mark.parametrize("balancer", ["least_used", "locality", "prefix_aware"])
def test_every_balancer_completes_a_multi_engine_run(balancer: str) -> None:
    programs = chat_workload(30, rate=10.0, seed=3)
    result = run_simulation(programs, SimConfig(num_engines=3, balancer=balancer))
    assert len(result.programs) == 30
    assert len(result.calls) == sum(len(p.calls) for p in programs)
    assert sum(e.num_calls for e in result.engines) == len(result.calls)
    if balancer != "prefix_aware":  # prefix_aware trades load for cache hits
        # These prompts are all short (under 2,048 tokens): locality balances them too.
        assert all(went_to_a_least_used_engine(c, result.calls) for c in result.calls)


def test_results_export_as_json_and_csv() -> None:
    result = run_simulation(chat_workload(5, rate=2.0), SimConfig())
    data = json.loads(result.to_json())
    assert data["summary"]["num_programs"] == 5
    assert len(data["programs"]) == 5
    assert result.programs_csv().splitlines()[0].startswith("program_id,workload,arrival_time")
    assert len(result.calls_csv().splitlines()) == len(result.calls) + 1
    summary = result.summary()
    assert summary["p99_latency_per_token"] >= summary["p50_latency_per_token"] > 0


def test_bad_workloads_are_rejected_before_anything_runs() -> None:
    good = chain_program("p", [3])
    dup = chain_program("p", [3])
    with pytest.raises(InvalidCallError):
        run_simulation([good, dup], SimConfig())
    orphan = ProgramSpec("q", 0.0, (CallSpec("c", "main", ("nope",), (), 3),))
    with pytest.raises(InvalidCallError):
        run_simulation([orphan], SimConfig())
    huge = chain_program("h", [10], prompt_tokens=5000)
    with pytest.raises(InvalidCallError):
        run_simulation([huge], SimConfig(engine=EngineConfig(num_kv_blocks=16)))


def test_unknown_names_in_the_config_raise_typed_errors() -> None:
    with pytest.raises(UnknownProfileError):
        run_simulation([chain_program("p", [3])], SimConfig(engine=EngineConfig(profile="h100")))
    with pytest.raises(UnknownBalancerError):
        run_simulation([chain_program("p", [3])], SimConfig(balancer="random"))
