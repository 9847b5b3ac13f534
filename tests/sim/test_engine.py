"""SimEngine on its own: token budget, chunked prefill, prefix cache, preemption costs."""

from __future__ import annotations

import math

import pytest

from autellix_backend.core import CallArrival, InvalidCallError, SchedulerConfig
from autellix_backend.sim import EngineConfig, LinearCostModel, SimEngine
from autellix_backend.workloads import PromptSegment

TOKENS_MODEL = LinearCostModel("tokens", per_token_s=1.0)
"""A step lasts as many seconds as it computes tokens, so durations show the batch size."""


def engine(model: LinearCostModel = TOKENS_MODEL, **settings: object) -> SimEngine:
    config = EngineConfig(**{"block_size": 4, "num_kv_blocks": 256, **settings})
    return SimEngine(config, SchedulerConfig(policy="fcfs"), cost_model=model)


def add(sim: SimEngine, call_id: str, prompt: int, output: int, now: float = 0.0) -> None:
    program_id = f"p-{call_id}"
    segments = (PromptSegment(f"{call_id}:in", prompt),)
    sim.add_call(CallArrival(call_id, program_id, prompt_tokens=prompt), segments, output, now)


def run_steps(sim: SimEngine, *, fuse: bool = False) -> tuple[list[float], dict[str, float]]:
    """Step until idle; return each outcome's duration and each call's finish time."""
    now, durations, finished = 0.0, [], {}
    while sim.has_work:
        duration = sim.start_step(now, until=math.inf if fuse else -math.inf)
        assert duration is not None
        outcome = sim.complete_step()
        durations.append(duration)
        for call in outcome.finished:
            assert call.call_id not in finished
            finished[call.call_id] = call.finish_time
        now = outcome.end
    return durations, finished


def test_chunked_prefill_splits_a_long_prompt_across_steps() -> None:
    sim = engine(max_num_batched_tokens=32)
    add(sim, "a", prompt=100, output=3)
    durations, _ = run_steps(sim)
    assert durations == [32, 32, 32, 4, 1, 1]


def test_a_step_never_exceeds_the_token_budget() -> None:
    sim = engine(max_num_batched_tokens=32)
    add(sim, "decoder", prompt=8, output=40)
    add(sim, "long", prompt=200, output=2)
    add(sim, "short", prompt=20, output=5)
    durations, finished = run_steps(sim)
    assert max(durations) <= 32
    assert sum(durations) == 8 + 39 + 200 + 1 + 20 + 4
    assert set(finished) == {"decoder", "long", "short"}


def test_without_chunked_prefill_a_long_prompt_runs_whole_and_alone() -> None:
    sim = engine(max_num_batched_tokens=32, enable_chunked_prefill=False)
    add(sim, "a", prompt=100, output=2)
    durations, _ = run_steps(sim)
    assert durations == [100, 1]


def test_fused_decode_steps_give_the_same_finish_times() -> None:
    def fresh() -> SimEngine:
        sim = SimEngine(EngineConfig(max_num_seqs=3), SchedulerConfig(policy="plas"))
        for i, (prompt, output) in enumerate([(300, 40), (50, 7), (900, 120), (20, 60), (5, 1)]):
            add(sim, f"c{i}", prompt, output)
        return sim

    plain, fused = fresh(), fresh()
    _, plain_finish = run_steps(plain)
    durations, fused_finish = run_steps(fused, fuse=True)
    assert plain_finish.keys() == fused_finish.keys()
    for call_id, finish in plain_finish.items():
        assert fused_finish[call_id] == pytest.approx(finish, rel=1e-9)
    assert fused.stats().num_steps == plain.stats().num_steps
    assert len(durations) < plain.stats().num_steps


def test_a_call_larger_than_the_kv_cache_is_rejected_and_nothing_changes() -> None:
    sim = engine(num_kv_blocks=4)
    arrival = CallArrival("big", "p", prompt_tokens=20)
    with pytest.raises(InvalidCallError):
        sim.add_call(arrival, (PromptSegment("x", 20),), 1, 0.0)
    with pytest.raises(InvalidCallError):
        sim.add_call(CallArrival("neg", "p", prompt_tokens=2), (PromptSegment("x", 2),), -1, 0.0)
    assert sim.num_calls == 0
    assert "big" not in sim.scheduler.calls


def test_multi_step_scheduling_admits_new_calls_only_every_n_steps() -> None:
    def first_token_of_late_call(every: int) -> float:
        sim = SimEngine(
            EngineConfig(profile="unit", max_num_seqs=2, schedule_every_n_steps=every),
            SchedulerConfig(policy="fcfs"),
        )
        add(sim, "early", prompt=1, output=10)
        now = 0.0
        late: dict[str, float] = {}
        while sim.has_work:
            if now == 1.0:
                add(sim, "late", prompt=1, output=2, now=now)
            outcome = sim.step(now)
            assert outcome is not None
            late.update({c.call_id: c.first_token_time for c in outcome.finished})
            now = outcome.end
        return late["late"]

    assert first_token_of_late_call(1) == 2.0
    assert first_token_of_late_call(4) == 5.0


@pytest.mark.parametrize(
    ("policy", "durations", "finished"),
    [
        ("fcfs", [2.0] * 5 + [1.0] * 2, {"a": 10.0, "b": 10.0, "c": 12.0}),
        ("plas", [2.0, 1.0, 2.0, 1.0, 2.0, 2.0, 1.0, 1.0], {"c": 6.0, "a": 10.0, "b": 12.0}),
    ],
)
def test_running_decodes_always_get_their_reserved_token(
    policy: str, durations: list[float], finished: dict[str, float]
) -> None:
    # A budget of 2 tokens, two seats: each step decodes both running calls (a running call's
    # decode token is reserved, not taken from the prefill budget) while c waits its turn.
    config = EngineConfig(block_size=4, num_kv_blocks=256, max_num_batched_tokens=2, max_num_seqs=2)
    sim = SimEngine(config, SchedulerConfig(policy=policy), cost_model=TOKENS_MODEL)  # type: ignore[arg-type]
    add(sim, "a", prompt=1, output=5)
    add(sim, "b", prompt=1, output=5)
    add(sim, "c", prompt=1, output=2)
    assert run_steps(sim) == (durations, finished)
