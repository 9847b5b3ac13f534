"""KV retention in the simulator: a program in a tool call keeps its prefix, and holds yield."""

from __future__ import annotations

from autellix_backend.core import KVRetention, Policy, RetentionRule, SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, SimResult, run_simulation
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment

from .conftest import chain_program


def _filler(program_id: str, arrival: float, prompt: int) -> ProgramSpec:
    """One call with a unique prompt: it churns the prefix cache's LRU."""
    call = CallSpec(f"{program_id}/0", "main", (), (PromptSegment(program_id, prompt),), 4)
    return ProgramSpec(program_id, arrival, (call,), workload="test")


def _run(
    mode: str,
    programs: list[ProgramSpec],
    *,
    num_kv_blocks: int = 64,
    max_held_fraction: float = 1.0,
) -> SimResult:
    rule = RetentionRule(
        default_tool_seconds=3.0, memory_value=0.01, max_held_fraction=max_held_fraction
    )
    config = SimConfig(
        scheduler=SchedulerConfig(
            policy=Policy.PLAS, kv_retention=KVRetention(mode), retention_rule=rule
        ),
        engine=EngineConfig(num_kv_blocks=num_kv_blocks),
    )
    return run_simulation(programs, config)


def _tool_program() -> ProgramSpec:
    # 400 + 8 tokens (25 full blocks), then a 3 s tool call, then the next call.
    return chain_program("agent", [8, 4], prompt_tokens=400, delay=3.0)


def _churn() -> list[ProgramSpec]:
    # Two unique 29-block prompts during the tool call: the second one evicts the LRU tail.
    return [_filler("fill-1", 0.5, 460), _filler("fill-2", 1.5, 460)]


def _next_call_hit(result: SimResult) -> int:
    return next(c.cached_tokens for c in result.calls if c.call_id == "agent/1")


def test_a_program_keeps_its_prefix_through_a_tool_call_only_with_retention() -> None:
    programs = [_tool_program(), *_churn()]
    off = _run("off", programs)
    for mode in ("dag", "ttl"):
        on = _run(mode, programs)
        assert _next_call_hit(on) >= 400, mode
    assert _next_call_hit(off) < 400
    agent_on = next(p for p in _run("dag", programs).programs if p.program_id == "agent")
    agent_off = next(p for p in off.programs if p.program_id == "agent")
    assert agent_on.latency < agent_off.latency


def test_no_hold_past_the_pools_share_for_holds() -> None:
    # The agent's 26 blocks are over a quarter of the 64-block pool: nothing is held.
    result = _run("dag", [_tool_program(), *_churn()], max_held_fraction=0.25)
    assert _next_call_hit(result) < 400


def test_a_tool_longer_than_the_ttl_loses_the_prefix() -> None:
    program = chain_program("agent", [8, 4], prompt_tokens=400, delay=30.0)
    late = [_filler("fill-1", 20.0, 460), _filler("fill-2", 25.0, 460)]
    assert _next_call_hit(_run("dag", [program, *late])) < 400


def test_holds_yield_to_a_call_that_needs_the_memory() -> None:
    # The filler needs 50 of 64 blocks while the agent holds 26: the hold must give way
    # (the filler is a new program, so it outranks the agent under PLAS), and no call stalls.
    programs = [_tool_program(), _filler("big", 0.5, 790)]
    result = _run("dag", programs)
    assert {p.program_id for p in result.programs} == {"agent", "big"}
    big = next(c for c in result.calls if c.program_id == "big")
    assert big.finish_time < 3.0  # it ran during the tool call, not after the TTL
    assert _next_call_hit(result) < 400  # the hold gave its tail blocks to the filler


def test_retained_blocks_are_released_when_programs_end() -> None:
    from autellix_backend.sim.simulator import Simulator

    config = SimConfig(
        scheduler=SchedulerConfig(
            kv_retention=KVRetention.TTL,
            retention_rule=RetentionRule(default_tool_seconds=3.0, memory_value=0.01),
        ),
        engine=EngineConfig(num_kv_blocks=64),
    )
    sim = Simulator([_tool_program(), *_churn()], config)
    sim.run()
    engine = sim.engines[0]
    assert engine.num_holds >= 1
    assert len(engine.retention) == 0
    assert engine.kv.num_free_blocks == engine.kv.num_blocks
