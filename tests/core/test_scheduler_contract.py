"""What a caller of one engine's ``Scheduler`` and of the ``ProgramTracker`` reads back.

Each test pins a value an engine loop, the metrics or an API caller acts on (found by
mutation testing: a changed constant or branch here passed every other test).
"""

from __future__ import annotations

import pytest

from autellix_backend.core import (
    CallArrival,
    DuplicateError,
    ProcessTable,
    ProgramTracker,
    Scheduler,
    SchedulerConfig,
    SlotBudget,
)
from autellix_backend.core.policies import ATLASPolicy
from tests.core._front import Front


def test_calls_record_the_engine_that_serves_them() -> None:
    named = Scheduler(SchedulerConfig(), engine_id="gpu-3")
    assert named.add_call(CallArrival("a", "p"), now=0.0).engine_id == "gpu-3"
    assert named.finish_call("a", now=1.0).engine_id == "gpu-3"
    assert Scheduler().add_call(CallArrival("a", "p"), now=0.0).engine_id == "engine-0"


def test_a_call_id_live_on_the_engine_is_refused_by_name() -> None:
    sched = Scheduler()
    sched.add_call(CallArrival("a", "p"), now=0.0)
    with pytest.raises(DuplicateError, match=r"^call 'a' already exists$"):
        sched.add_call(CallArrival("a", "q"), now=1.0)


@pytest.mark.parametrize("policy", ["fcfs", "srpt"])
def test_policies_without_queues_report_one_queue(policy: str) -> None:
    sched = Scheduler(SchedulerConfig(policy=policy, num_queues=4))  # type: ignore[arg-type]
    for call_id in ("a", "b"):
        sched.add_call(CallArrival(call_id, "p", oracle_remaining=50.0), now=0.0)
    # The metrics' per-queue lengths: one queue holding both calls.
    assert sched.queue.lengths() == [2]


def test_srpt_breaks_ties_first_come_first_served() -> None:
    sched = Scheduler(SchedulerConfig(policy="srpt"))  # type: ignore[arg-type]
    for call_id in ("first", "second", "third"):
        sched.add_call(CallArrival(call_id, call_id, oracle_remaining=10.0), now=0.0)
    assert [c.call_id for c in sched.schedule(SlotBudget(1), now=0.0).scheduled] == ["first"]
    assert [c.call_id for c in sched.waiting()] == ["second", "third"]


def test_the_promotion_count_counts_promotions() -> None:
    config = SchedulerConfig(
        policy="plas",  # type: ignore[arg-type]
        service_unit="tokens",  # type: ignore[arg-type]
        base_quantum=1.0,
        num_queues=4,
        starvation_beta=2.0,
    )
    front = Front(config)
    for name in ("old", "fresh"):
        front.table.start_program(name, now=0.0)
    old = front.table.program("old")
    old.service = old.total_service = 4.0
    front.add_call(CallArrival("s", "old"), now=0.0)
    front.add_call(CallArrival("f", "fresh"), now=0.0)
    front.schedule(SlotBudget(1), now=0.0)
    assert front.sched.num_promotions == 0
    assert front.schedule(SlotBudget(1), now=8.0).promoted_ids == ("s",)
    assert front.sched.num_promotions == 1


def test_a_tracker_uses_the_policy_and_table_it_is_given() -> None:
    policy = ATLASPolicy()
    table = ProcessTable()
    tracker = ProgramTracker(policy, table)
    assert tracker.policy is policy and tracker.table is table
    # Without a table it keeps its own, empty one.
    own = ProgramTracker("plas")
    assert isinstance(own.table, ProcessTable) and own.table is not table
    own.table.start_program("p", now=0.0)
    assert own.admit(CallArrival("a", "p"), now=0.0).priority == 0.0
    assert len(table) == 0
