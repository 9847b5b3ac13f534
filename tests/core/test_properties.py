"""Property tests: nothing lost or run twice, every program finishes, no starvation."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from autellix_backend.core import Policy, SchedulerConfig
from tests.core._unit_engine import UnitProgram, run_unit_engine

programs_strategy = st.lists(
    st.tuples(st.integers(0, 30), st.lists(st.integers(1, 12), min_size=1, max_size=5)),
    min_size=1,
    max_size=12,
).map(
    lambda items: [
        UnitProgram(f"p{i}", arrival, lengths) for i, (arrival, lengths) in enumerate(items)
    ]
)
NON_ORACLE = [p for p in Policy if p is not Policy.SRPT]


@settings(max_examples=60, deadline=None)
@given(
    programs=programs_strategy,
    policy=st.sampled_from(NON_ORACLE),
    batch_size=st.integers(1, 4),
    base_quantum=st.sampled_from([1.0, 2.0, 5.0]),
    beta=st.sampled_from([None, 2.0, 8.0]),
)
def test_every_call_runs_exactly_once_and_every_program_finishes(
    programs: list[UnitProgram],
    policy: Policy,
    batch_size: int,
    base_quantum: float,
    beta: float | None,
) -> None:
    config = SchedulerConfig(
        policy=policy,
        service_unit="tokens",
        base_quantum=base_quantum,
        num_queues=5,
        starvation_beta=beta,
    )
    total_tokens = sum(sum(p.call_lengths) for p in programs)
    run = run_unit_engine(programs, config, batch_size=batch_size, horizon=total_tokens + 40)
    expected_calls = {f"{p.program_id}/{i}" for p in programs for i in range(len(p.call_lengths))}
    assert set(run.finished_calls) == expected_calls
    assert all(count == 1 for count in run.finished_calls.values())
    assert set(run.program_finish) == {p.program_id for p in programs}
    for p in programs:
        for i, n in enumerate(p.call_lengths):
            assert run.tokens[f"{p.program_id}/{i}"] == n


@settings(max_examples=40, deadline=None)
@given(
    programs=programs_strategy,
    policy=st.sampled_from([Policy.MLFQ, Policy.PLAS, Policy.ATLAS, Policy.ATLAS_EXACT]),
    beta=st.sampled_from([1.0, 2.0, 4.0]),
)
def test_anti_starvation_bounds_each_wait(
    programs: list[UnitProgram], policy: Policy, beta: float
) -> None:
    """A call with service waits at most beta x its program's service plus the top-queue
    quanta of the calls that can be ahead of it in Q1 (one batch slot here)."""
    config = SchedulerConfig(
        policy=policy, service_unit="tokens", base_quantum=1.0, num_queues=5, starvation_beta=beta
    )
    max_live = sum(len(p.call_lengths) > 0 for p in programs)
    slack = config.quantum(0) * max_live + 1
    total_tokens = sum(sum(p.call_lengths) for p in programs)
    run = run_unit_engine(
        programs, config, batch_size=1, horizon=total_tokens + 40, wait_bound_slack=slack
    )
    assert run.wait_bound_violations == []


def _endless_short_stream(n: int) -> list[UnitProgram]:
    long = UnitProgram("long", 0, [4, 4, 4, 4, 4])
    shorts = [UnitProgram(f"s{i}", 2 * i, [1, 1]) for i in range(1, n)]
    return [long, *shorts]


def test_plas_and_atlas_do_not_starve_a_long_program_under_a_stream_of_short_ones() -> None:
    # A short program (two 1-token calls) every 2 steps keeps a one-slot engine always busy.
    programs = _endless_short_stream(300)
    for policy in (Policy.PLAS, Policy.ATLAS):
        config = SchedulerConfig(
            policy=policy, service_unit="tokens", base_quantum=1.0, starvation_beta=4.0
        )
        run = run_unit_engine(programs, config, batch_size=1, horizon=600)
        assert "long" in run.program_finish, policy
        assert run.program_finish["long"] < 300
        starved = SchedulerConfig(
            policy=policy, service_unit="tokens", base_quantum=1.0, starvation_beta=None
        )
        without = run_unit_engine(programs, starved, batch_size=1, horizon=600)
        assert without.program_finish.get("long", math.inf) > run.program_finish["long"]
