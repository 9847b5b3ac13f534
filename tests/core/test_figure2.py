"""The paper's Figure 2 on the core alone: batch size 2, time in decode steps.

Programs A (4, 3, 1, 1), B (3, 3, 4), C (1, 2) and D (4) arrive at t=0; each program's calls run
one after another. Total waiting time: FCFS 18, MLFQ 18, PLAS 12. The figure's charts follow
round-robin inside a queue (a preempted call goes to the tail), least program attained
service first inside a queue, quanta 1, 2, 4, ..., and break the t=0 tie with B first; see
docs/scheduling.md. The simulator test in tests/sim reproduces the same on the engine model.
"""

from __future__ import annotations

import itertools

import pytest

from autellix_backend.core import Policy, SchedulerConfig
from tests.core._unit_engine import UnitProgram, run_unit_engine

FIGURE2 = {"A": [4, 3, 1, 1], "B": [3, 3, 4], "C": [1, 2], "D": [4]}
FIGURE2_ORDER = "BACD"


def figure2_config(policy: Policy) -> SchedulerConfig:
    return SchedulerConfig(
        policy=policy,
        service_unit="tokens",
        base_quantum=1.0,
        quantum_growth=2.0,
        num_queues=6,
        starvation_beta=None,
        queue_order="least_attained",
        requeue_preempted=True,
    )


def total_wait(policy: Policy, order: str = FIGURE2_ORDER) -> float:
    programs = [UnitProgram(p, 0, FIGURE2[p]) for p in order]
    run = run_unit_engine(programs, figure2_config(policy), batch_size=2, horizon=100)
    work = {p: sum(lengths) for p, lengths in FIGURE2.items()}
    return sum(run.program_finish[p] - work[p] for p in FIGURE2)


@pytest.mark.parametrize(("policy", "expected"), [("fcfs", 18), ("mlfq", 18), ("plas", 12)])
def test_figure2_total_waiting_time(policy: str, expected: int) -> None:
    assert total_wait(Policy.parse(policy)) == expected


def test_plas_is_never_worse_than_mlfq_whatever_the_tie_order() -> None:
    for order in map("".join, itertools.permutations("ABCD")):
        plas = total_wait(Policy.PLAS, order)
        assert plas <= total_wait(Policy.MLFQ, order), order
        if set(order[:2]) == {"A", "B"}:  # the long programs first: FCFS blocks the short ones
            assert plas < total_wait(Policy.FCFS, order), order
