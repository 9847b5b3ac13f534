"""Each policy's priority rule, as PAPER.md states it."""

from __future__ import annotations

import pytest

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    InvalidCallError,
    SchedulerConfig,
    SlotBudget,
)
from tests.core._front import Front


def _run_call(
    sched: Front,
    call_id: str,
    program: str,
    service: float,
    now: float,
    parents: tuple[str, ...] = (),
    thread: str = "main",
) -> float:
    call = sched.add_call(
        CallArrival(call_id=call_id, program_id=program, parent_ids=parents, thread_id=thread),
        now=now,
    )
    priority = call.priority
    sched.schedule(SlotBudget(64), now=now)
    sched.update_from_step([CallProgress(call_id, num_decode_tokens=1)], service, now + service)
    sched.finish_call(call_id, now + service)
    return priority


def test_plas_priority_is_the_programs_summed_service() -> None:
    sched = Front(SchedulerConfig(policy="plas"))
    sched.table.start_program("p", now=0.0)
    assert _run_call(sched, "c1", "p", 2.0, 0.0) == 0.0
    assert _run_call(sched, "c2", "p", 3.0, 5.0) == 2.0
    assert _run_call(sched, "c3", "p", 1.0, 9.0) == 5.0
    assert sched.table.program("p").service == 6.0


def test_mlfq_ignores_program_history() -> None:
    sched = Front(SchedulerConfig(policy="mlfq"))
    sched.table.start_program("p", now=0.0)
    _run_call(sched, "c1", "p", 5.0, 0.0)
    assert _run_call(sched, "c2", "p", 1.0, 6.0) == 0.0


def test_atlas_uses_the_longest_critical_path_not_the_sum() -> None:
    sched = Front(SchedulerConfig(policy="atlas"))
    sched.table.start_program("p", now=0.0)
    # Two parallel threads start together, each reading priority 0.
    a = sched.add_call(CallArrival(call_id="a", program_id="p", thread_id="t1"), now=0.0)
    b = sched.add_call(CallArrival(call_id="b", program_id="p", thread_id="t2"), now=0.0)
    assert a.priority == b.priority == 0.0
    sched.schedule(SlotBudget(2), now=0.0)
    sched.update_from_step([CallProgress("a"), CallProgress("b")], 3.0, 3.0)
    sched.finish_call("a", 3.0)
    sched.finish_call("b", 3.0)
    assert sched.table.program("p").service == 3.0  # max(0 + 3, 0 + 3), not 6
    assert _run_call(sched, "c", "p", 1.0, 3.0, parents=("a", "b")) == 3.0


def test_atlas_exact_reads_priority_from_the_true_parents() -> None:
    sched = Front(SchedulerConfig(policy="atlas_exact"))
    sched.table.start_program("p", now=0.0)
    _run_call(sched, "root", "p", 1.0, 0.0)
    _run_call(sched, "long", "p", 5.0, 1.0, parents=("root",), thread="t1")
    _run_call(sched, "short", "p", 1.0, 1.0, parents=("root",), thread="t2")
    # Program-wide scalar is 6 (root + long); a child of `short` sits at 1 + 1 = 2.
    assert sched.table.program("p").service == 6.0
    assert _run_call(sched, "after_short", "p", 1.0, 7.0, parents=("short",)) == 2.0
    assert _run_call(sched, "join", "p", 1.0, 8.0, parents=("long", "after_short")) == 6.0
    # With no DAG information it falls back to the paper's ATLAS scalar.
    assert _run_call(sched, "untagged", "p", 1.0, 9.0) == 7.0


def test_srpt_needs_the_oracle_and_runs_shortest_remaining_first() -> None:
    sched = Front(SchedulerConfig(policy="srpt"))
    sched.table.start_program("p", now=0.0)
    with pytest.raises(InvalidCallError, match="oracle"):
        sched.add_call(CallArrival(call_id="x", program_id="p"), now=0.0)
    sched.table.start_program("q", now=0.0)
    sched.add_call(CallArrival(call_id="long", program_id="p", oracle_remaining=10.0), now=0.0)
    sched.add_call(CallArrival(call_id="short", program_id="q", oracle_remaining=2.0), now=0.0)
    decision = sched.schedule(SlotBudget(1), now=0.0)
    assert [c.call_id for c in decision.scheduled] == ["short"]
