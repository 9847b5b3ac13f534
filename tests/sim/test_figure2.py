"""The paper's Figure 2 on the simulated engine: batch size 2, every step 1.0, prefill free.

Same setting as tests/core/test_figure2.py (see docs/scheduling.md for the tie rules), run
through ``run_simulation`` on the ``unit`` profile instead of a hand-written loop.
"""

from __future__ import annotations

import pytest

from autellix_backend.core import SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from tests.sim.conftest import chain_program

FIGURE2 = {"B": [3, 3, 4], "A": [4, 3, 1, 1], "C": [1, 2], "D": [4]}


def total_wait(policy: str) -> float:
    programs = [chain_program(pid, lengths) for pid, lengths in FIGURE2.items()]
    config = SimConfig(
        scheduler=SchedulerConfig(
            policy=policy,
            service_unit="tokens",
            base_quantum=1.0,
            num_queues=6,
            starvation_beta=None,
            queue_order="least_attained",
            requeue_preempted=True,
        ),
        engine=EngineConfig(profile="unit", max_num_seqs=2),
    )
    result = run_simulation(programs, config)
    assert sum(p.total_wait for p in result.programs) == pytest.approx(
        sum(p.latency - sum(FIGURE2[p.program_id]) for p in result.programs)
    )
    return float(sum(p.total_wait for p in result.programs))


@pytest.mark.parametrize(("policy", "expected"), [("fcfs", 18), ("mlfq", 18), ("plas", 12)])
def test_figure2_total_waiting_time(policy: str, expected: int) -> None:
    assert total_wait(policy) == expected
