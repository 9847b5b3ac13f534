"""Discretised queues, quanta, demotion, preemption and anti-starvation."""

from __future__ import annotations

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    ProcessTable,
    ProgramTracker,
    SchedulerConfig,
    SlotBudget,
)
from tests.core._front import Front


def _config(**overrides: object) -> SchedulerConfig:
    base: dict[str, object] = {
        "service_unit": "tokens",
        "base_quantum": 2.0,
        "num_queues": 4,
        "starvation_beta": None,
    }
    base.update(overrides)
    return SchedulerConfig(**base)  # type: ignore[arg-type]


def _ids(calls: object) -> list[str]:
    return [c.call_id for c in calls]  # type: ignore[attr-defined]


def test_queue_boundaries_follow_the_quanta() -> None:
    config = _config(base_quantum=1.0, quantum_growth=2.0, num_queues=4)
    assert config.lower_bounds() == (0.0, 1.0, 3.0, 7.0)
    assert [config.quantum(i) for i in range(3)] == [1.0, 2.0, 4.0]
    assert config.quantum(3) == float("inf")


def test_plas_places_a_call_in_the_queue_of_its_programs_service() -> None:
    sched = Front(_config(policy="plas", base_quantum=1.0))
    sched.table.start_program("p", now=0.0)
    sched.table.program("p").service = 5.0
    call = sched.add_call(CallArrival(call_id="c", program_id="p"), now=0.0)
    assert call.level == 2  # [3, 7)


def test_a_call_that_spends_its_quantum_is_demoted_and_goes_behind() -> None:
    sched = Front(_config(policy="mlfq"))
    for name in ("p", "q"):
        sched.table.start_program(name, now=0.0)
    sched.add_call(CallArrival(call_id="long", program_id="p"), now=0.0)
    assert _ids(sched.schedule(SlotBudget(1), now=0.0).scheduled) == ["long"]
    sched.update_from_step([CallProgress("long", num_decode_tokens=2)], 2.0, 2.0)
    assert sched.calls["long"].level == 1
    sched.add_call(CallArrival(call_id="new", program_id="q"), now=2.0)
    decision = sched.schedule(SlotBudget(1), now=2.0)
    assert _ids(decision.scheduled) == ["new"]
    assert _ids(decision.preempted) == ["long"]
    assert sched.calls["long"].num_preemptions == 1


def test_fcfs_never_preempts_for_a_waiting_call() -> None:
    sched = Front(_config(policy="fcfs"))
    for name in ("p", "q"):
        sched.table.start_program(name, now=0.0)
    sched.add_call(CallArrival(call_id="first", program_id="p"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    sched.update_from_step([CallProgress("first", num_decode_tokens=50)], 50.0, 50.0)
    sched.add_call(CallArrival(call_id="second", program_id="q"), now=50.0)
    decision = sched.schedule(SlotBudget(1), now=50.0)
    assert _ids(decision.scheduled) == ["first"]
    assert decision.preempted == ()


def test_plas_lets_a_fresh_program_overtake_a_long_one() -> None:
    sched = Front(_config(policy="plas"))
    for name in ("long", "short"):
        sched.table.start_program(name, now=0.0)
    sched.table.program("long").service = 100.0
    sched.add_call(CallArrival(call_id="l", program_id="long"), now=0.0)
    sched.add_call(CallArrival(call_id="s", program_id="short"), now=0.1)
    assert _ids(sched.schedule(SlotBudget(1), now=0.1).scheduled) == ["s"]


def test_batch_building_stops_at_the_first_call_that_does_not_fit() -> None:
    sched = Front(_config(policy="plas"))
    sched.table.start_program("p", now=0.0)
    sched.add_call(CallArrival(call_id="a", program_id="p", prompt_tokens=10), now=0.0)
    sched.add_call(CallArrival(call_id="big", program_id="p", prompt_tokens=500), now=0.0)
    sched.add_call(CallArrival(call_id="c", program_id="p", prompt_tokens=10), now=0.0)
    budget = SlotBudget(8, max_num_tokens=100)
    assert _ids(sched.schedule(budget, now=0.0).scheduled) == ["a"]
    relaxed = Front(_config(policy="plas", stop_at_first_misfit=False))
    relaxed.table.start_program("p", now=0.0)
    for cid, n in (("a", 10), ("big", 500), ("c", 10)):
        relaxed.add_call(CallArrival(call_id=cid, program_id="p", prompt_tokens=n), now=0.0)
    assert _ids(relaxed.schedule(SlotBudget(8, max_num_tokens=100), now=0.0).scheduled) == [
        "a",
        "c",
    ]


def test_anti_starvation_promotes_a_call_that_waited_beta_times_its_service() -> None:
    sched = Front(_config(policy="plas", starvation_beta=2.0, base_quantum=1.0))
    for name in ("old", "fresh"):
        sched.table.start_program(name, now=0.0)
    old = sched.table.program("old")
    old.service = old.total_service = 4.0  # it already ran 4 units: queue 2
    starving = sched.add_call(CallArrival(call_id="s", program_id="old"), now=0.0)
    assert starving.level == 2
    sched.add_call(CallArrival(call_id="f", program_id="fresh"), now=0.0)
    assert _ids(sched.schedule(SlotBudget(1), now=0.0).scheduled) == ["f"]
    decision = sched.schedule(SlotBudget(1), now=7.9)
    assert decision.promoted_ids == ()
    decision = sched.schedule(SlotBudget(1), now=8.0)  # waited 8 >= 2 * 4
    assert decision.promoted_ids == ("s",)
    assert starving.level == 0
    # Both now share Q1; FCFS inside the queue keeps the running call first.
    assert _ids(decision.scheduled) == ["f"]


def test_engines_rank_calls_by_the_one_tables_snapshot() -> None:
    tracker = ProgramTracker("plas", ProcessTable())
    e1 = Front(_config(policy="plas"), engine_id="e1", tracker=tracker)
    e2 = Front(_config(policy="plas"), engine_id="e2", tracker=tracker)
    tracker.table.start_program("p", now=0.0)
    e1.add_call(CallArrival(call_id="c1", program_id="p"), now=0.0)
    e1.schedule(SlotBudget(1), now=0.0)
    e1.update_from_step([CallProgress("c1", num_decode_tokens=3)], 3.0, 3.0)
    e1.finish_call("c1", now=3.0)
    call = e2.add_call(CallArrival(call_id="c2", program_id="p"), now=3.0)
    assert call.priority == 3.0
    assert tracker.table.program("p").engine_ids == {"e1", "e2"}
    assert not e2.has_call("c1") and e2.has_call("c2")
    assert not e1.program_ids() and e2.program_ids() == ["p"]
