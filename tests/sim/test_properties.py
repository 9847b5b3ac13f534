"""Property tests: whatever the engine settings and policy, no call is lost or run twice."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autellix_backend.core import SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, Simulator
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment

MAX_SYSTEM, MAX_PARENTS, PARENT_OUT, MAX_INPUT, MAX_OUTPUT = 12, 2, 3, 20, 12
MAX_CALL_TOKENS = MAX_SYSTEM + MAX_PARENTS * PARENT_OUT + MAX_INPUT + MAX_OUTPUT
SMALLEST_BLOCK = 2
MIN_KV_BLOCKS = math.ceil(MAX_CALL_TOKENS / SMALLEST_BLOCK)
"""The largest call fits the smallest engine: a bigger call is rightly rejected up front
(tested in test_simulator), which is not what this property is about."""


@st.composite
def programs(draw: st.DrawFn) -> list[ProgramSpec]:
    """Chains and fan-outs sharing a system prompt, arriving within a few seconds."""
    result = []
    for p in range(draw(st.integers(1, 6))):
        calls: list[CallSpec] = []
        for c in range(draw(st.integers(1, 5))):
            call_id = f"p{p}c{c}"
            earlier = [x.call_id for x in calls]
            parents = tuple(
                sorted(draw(st.sets(st.sampled_from(earlier), max_size=MAX_PARENTS)))
                if calls
                else ()
            )
            prompt = [PromptSegment("system", draw(st.integers(0, MAX_SYSTEM)))]
            prompt += [PromptSegment(f"{x}:out", PARENT_OUT) for x in parents]
            prompt.append(PromptSegment(f"{call_id}:in", draw(st.integers(1, MAX_INPUT))))
            output = draw(st.integers(0, MAX_OUTPUT))
            calls.append(
                CallSpec(
                    call_id,
                    f"t{c % 2}",
                    parents,
                    tuple(prompt),
                    output,
                    draw(st.sampled_from([0.0, 0.5])),
                )
            )
        result.append(ProgramSpec(f"p{p}", draw(st.floats(0, 3)), tuple(calls)))
    return result


engine_configs = st.builds(
    EngineConfig,
    profile=st.just("cpu-tiny"),
    max_num_seqs=st.integers(1, 4),
    max_num_batched_tokens=st.integers(4, 40),
    block_size=st.sampled_from([SMALLEST_BLOCK, 4]),
    num_kv_blocks=st.integers(MIN_KV_BLOCKS, 48),
    num_cpu_blocks=st.sampled_from([None, 8]),
    enable_prefix_caching=st.booleans(),
    enable_chunked_prefill=st.booleans(),
    preemption_mode=st.sampled_from(["swap", "recompute"]),
    swap_batched=st.booleans(),
    schedule_every_n_steps=st.integers(1, 3),
)
policies = st.sampled_from(["fcfs", "mlfq", "plas", "atlas", "atlas_exact", "srpt"])


def _largest_call_program() -> list[ProgramSpec]:
    """A join of the largest size the generator makes, to run on the smallest engine."""
    system = PromptSegment("system", MAX_SYSTEM)
    small = [
        CallSpec(f"p0c{i}", f"t{i}", (), (system, PromptSegment(f"p0c{i}:in", 1)), 1)
        for i in (0, 1)
    ]
    join_prompt = (
        system,
        PromptSegment("p0c0:out", PARENT_OUT),
        PromptSegment("p0c1:out", PARENT_OUT),
        PromptSegment("p0c2:in", MAX_INPUT),
    )
    join = CallSpec("p0c2", "t0", ("p0c0", "p0c1"), join_prompt, MAX_OUTPUT)
    return [ProgramSpec("p0", 0.0, (*small, join))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), engine_configs, policies, st.integers(1, 3))
@example(
    _largest_call_program(),
    EngineConfig(
        profile="cpu-tiny", max_num_seqs=1, block_size=SMALLEST_BLOCK, num_kv_blocks=MIN_KV_BLOCKS
    ),
    "plas",
    1,
)
def test_every_call_runs_to_completion_exactly_once(
    workload: list[ProgramSpec], engine: EngineConfig, policy: str, num_engines: int
) -> None:
    config = SimConfig(
        scheduler=SchedulerConfig(policy=policy, base_quantum=0.01),
        engine=engine,
        num_engines=num_engines,
        balancer="prefix_aware" if num_engines == 3 else "locality",
        locality_threshold=16,
    )
    sim = Simulator(workload, config)
    result = sim.run()
    finished = [c.call_id for c in result.calls]
    assert len(finished) == len(set(finished))
    by_id = {c.call_id: c for c in result.calls}
    specs = [c for p in workload for c in p.calls]
    assert set(by_id) == {c.call_id for c in specs}
    for spec in specs:
        assert by_id[spec.call_id].output_tokens == spec.output_tokens
        for parent in spec.parent_ids:
            assert by_id[parent].finish_time <= by_id[spec.call_id].arrival_time
    assert {p.program_id for p in result.programs} == {p.program_id for p in workload}
    for engine_ in sim.engines:
        assert engine_.kv.num_free_blocks == engine_.kv.num_blocks
        assert engine_.kv.num_shared_blocks == 0
    assert len(sim.table) == 0
