"""What a caller of one engine's ``Scheduler`` and of the ``ProgramTracker`` reads back.

Each test pins a value an engine loop, the metrics or an API caller acts on (found by
mutation testing: a changed constant or branch here passed every other test).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    CallStatus,
    DuplicateError,
    InvalidCallError,
    ProcessTable,
    ProgramTracker,
    Scheduler,
    SchedulerConfig,
    SlotBudget,
    UnknownCallError,
)
from autellix_backend.core.policies import ATLASPolicy
from autellix_protocol.snapshot import ProgramSnapshot
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


def test_a_finished_call_records_when_it_finished() -> None:
    sched = Scheduler()
    sched.add_call(CallArrival("a", "p"), now=0.0)
    sched.schedule(SlotBudget(1), now=1.0)
    ended = sched.finish_call("a", now=3.0)
    assert ended.finish_time == 3.0 and ended.status is CallStatus.FINISHED
    assert ended.wait == 1.0


def test_refresh_keeps_each_calls_own_critical_path_and_counts_what_it_touched() -> None:
    sched = Scheduler(SchedulerConfig(policy="atlas_exact"))  # type: ignore[arg-type]
    snapshot = ProgramSnapshot(service=1.0, critical_path=7.0)
    call = sched.add_call(CallArrival("a", "p", snapshot=snapshot), now=0.0)
    assert sched.refresh("p", ProgramSnapshot(service=9.0, critical_path=2.0)) == 1
    assert call.snapshot.service == 9.0 and call.snapshot.critical_path == 7.0
    assert sched.refresh("nobody", ProgramSnapshot()) == 0


def test_refresh_keeps_a_waiting_calls_place_in_its_queue() -> None:
    sched = Scheduler(_plas())
    for call_id in ("first", "second"):
        sched.add_call(CallArrival(call_id, call_id), now=0.0)
    # first's program attained a little service elsewhere: still Q1, still first in it.
    sched.refresh("first", ProgramSnapshot(service=0.5, total_service=0.5))
    assert [c.call_id for c in sched.waiting()] == ["first", "second"]
    assert [c.call_id for c in sched.schedule(SlotBudget(1), now=0.0).scheduled] == ["first"]


def test_a_refreshed_wait_brings_the_promotion_forward() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    old = ProgramSnapshot(service=4.0, total_service=4.0)
    sched.add_call(CallArrival("s", "old", snapshot=old), now=0.0)
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    # Alone, s would reach beta at 2 * 4 = 8; its program also waited 4 elsewhere: now 4.
    sched.refresh("old", replace(old, total_wait=4.0))
    assert sched.schedule(SlotBudget(1), now=3.9).promoted_ids == ()
    assert sched.schedule(SlotBudget(1), now=4.0).promoted_ids == ("s",)


def _plas(**overrides: object) -> SchedulerConfig:
    settings: dict[str, object] = {
        "policy": "plas",
        "service_unit": "tokens",
        "base_quantum": 1.0,
        "num_queues": 4,
        "starvation_beta": None,
    }
    settings.update(overrides)
    return SchedulerConfig(**settings)  # type: ignore[arg-type]


def test_the_tracker_records_the_engine_and_the_outcome_of_each_call() -> None:
    tracker = ProgramTracker("plas")
    program = tracker.table.start_program("p", now=0.0)
    call = tracker.admit(CallArrival("a", "p"), now=0.0, engine_id="e1")
    assert call.engine_id == "e1" and program.engine_ids == {"e1"}
    tracker.complete(call, 1.0)
    assert call.status is CallStatus.FINISHED
    # An aborted call's service counts, however small.
    aborted = tracker.admit(CallArrival("b", "p"), now=1.0)
    tracker.complete(aborted, 2.0, aborted=True, service=0.5)
    assert aborted.status is CallStatus.ABORTED and program.service == 0.5


def test_atlas_exact_paths_come_from_calls_that_ran_or_finished() -> None:
    tracker = ProgramTracker("atlas_exact")
    program = tracker.table.start_program("p", now=0.0)
    quick, long, never = (
        tracker.admit(CallArrival(c, "p"), now=0.0) for c in ("quick", "long", "never")
    )
    tracker.complete(long, 1.0, service=10.0)
    tracker.complete(quick, 1.0, service=0.0)  # finished without a reported service
    tracker.complete(never, 1.0, aborted=True, service=0.0)  # aborted before it ran
    assert program.call_path_end == {"long": 10.0, "quick": 0.0}
    # quick's child starts from quick's path, not from the program's longest one.
    assert tracker.admit(CallArrival("child", "p", parent_ids=("quick",)), now=1.0).priority == 0.0


def test_the_table_keeps_the_preemptions_and_promotions_its_engine_saw() -> None:
    front = Front(_plas(starvation_beta=2.0))
    for name in ("old", "fresh"):
        front.table.start_program(name, now=0.0)
    old = front.table.program("old")
    old.service = old.total_service = 4.0
    front.add_call(CallArrival("s", "old"), now=0.0)
    front.add_call(CallArrival("f", "fresh"), now=0.0)
    front.schedule(SlotBudget(1), now=0.0)  # f runs
    front.schedule(SlotBudget(1), now=8.0)  # s promoted to Q1, behind f
    front.update_from_step([CallProgress("f", num_decode_tokens=1)], 1.0, now=9.0)
    assert [c.call_id for c in front.schedule(SlotBudget(1), now=9.0).preempted] == ["f"]
    front.finish_call("s", now=10.0)
    front.schedule(SlotBudget(1), now=10.0)
    front.finish_call("f", now=11.0)
    assert front.table.programs["old"].calls["s"].promotion_times == [8.0]
    assert front.table.programs["fresh"].calls["f"].preempted_spans == [(9.0, 10.0)]


def test_ended_calls_leave_nothing_behind_in_the_queues() -> None:
    sched = Scheduler(_plas())
    for call_id in ("a", "b", "c"):
        sched.add_call(CallArrival(call_id, "p"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    sched.finish_call("a", now=1.0)
    sched.abort_call("b", now=1.0)
    # A long-running gateway must not grow with every call it ever queued.
    assert list(sched.queue.tickets) == ["c"] and sched.queue.lengths() == [1, 0, 0, 0]
    sched.finish_call("c", now=2.0)
    assert sched.queue.tickets == {} and len(sched.queue) == 0 and sched.program_ids() == []


def test_a_decision_lists_as_started_only_the_calls_that_start_now() -> None:
    sched = Scheduler(_plas())
    sched.add_call(CallArrival("a", "p"), now=0.0)
    assert [c.call_id for c in sched.schedule(SlotBudget(2), now=0.0).started] == ["a"]
    sched.add_call(CallArrival("b", "q"), now=1.0)
    decision = sched.schedule(SlotBudget(2), now=1.0)
    assert [c.call_id for c in decision.scheduled] == ["a", "b"]
    assert [c.call_id for c in decision.started] == ["b"]


def test_a_call_is_demoted_queue_by_queue_down_to_the_last() -> None:
    sched = Scheduler(_plas(quantum_growth=2.0))
    call = sched.add_call(CallArrival("a", "p"), now=0.0)
    levels = []
    for step in range(9):
        sched.schedule(SlotBudget(1), now=float(step))
        sched.update_from_step([CallProgress("a", num_decode_tokens=1)], 1.0, now=step + 1.0)
        levels.append(call.level)
    # Quanta 1, 2, 4 tokens, then the last queue keeps it.
    assert levels == [1, 1, 2, 2, 2, 2, 3, 3, 3]


def test_step_reports_are_checked_before_anything_is_credited() -> None:
    sched = Scheduler(_plas())
    call = sched.add_call(CallArrival("a", "p"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    with pytest.raises(InvalidCallError, match=r"^step_time must be >= 0, got -0.5$"):
        sched.update_from_step([], -0.5, now=1.0)
    bad = CallProgress("a", num_decode_tokens=-1)
    with pytest.raises(InvalidCallError, match=r"^token counts in a step must be >= 0$"):
        sched.update_from_step([bad], 1.0, now=1.0)
    good = CallProgress("a", num_decode_tokens=1)
    with pytest.raises(UnknownCallError, match=r"^unknown call 'x'$"):
        sched.update_from_step([good, CallProgress("x", num_decode_tokens=1)], 1.0, now=1.0)
    assert call.service == 0.0
    sched.update_from_step([good], 0.0, now=1.0)  # a step may take no time
    assert call.service == 1.0 and call.num_output_tokens == 1


def test_step_progress_adds_up_even_for_a_call_the_engine_held_back() -> None:
    sched = Scheduler(_plas(queue_order="least_attained", base_quantum=100.0))
    a = sched.add_call(CallArrival("a", "p"), now=0.0)
    sched.add_call(CallArrival("b", "q"), now=0.0)
    for now in (1.0, 2.0):
        sched.update_from_step(
            [CallProgress("a", num_prefill_tokens=3, num_decode_tokens=1)], 1.0, now=now
        )
    assert (a.num_prompt_tokens_computed, a.num_output_tokens, a.service) == (6, 2, 2.0)
    # a was waiting: its progress moves it behind b (least attained service first).
    assert [c.call_id for c in sched.waiting()] == ["b", "a"]


def test_each_starving_call_is_promoted_when_its_own_deadline_comes() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    snapshot = ProgramSnapshot(service=4.0, total_service=4.0)
    sched.add_call(CallArrival("s1", "p1", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("s2", "p2", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    # p1 attained more elsewhere: s1 is due at 2 * 5 = 10, s2 still at 8.
    sched.refresh("p1", replace(snapshot, total_service=5.0))
    assert sched.schedule(SlotBudget(1), now=8.0).promoted_ids == ("s2",)
    assert sched.schedule(SlotBudget(1), now=10.0).promoted_ids == ("s1",)
    assert sched.num_promotions == 2


def test_a_call_whose_program_has_no_service_yet_is_never_promoted() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    # Ranked in queue 3 by a critical path, with no completed service to weigh its wait.
    call = sched.add_call(CallArrival("s", "p", snapshot=ProgramSnapshot(service=4.0)), now=0.0)
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    assert sched.schedule(SlotBudget(1), now=0.0).promoted_ids == ()
    assert sched.schedule(SlotBudget(1), now=1000.0).promoted_ids == ()
    assert call.level == 2 and sched.num_promotions == 0


@pytest.mark.parametrize("num_queues", [2, 4])
def test_a_starving_call_in_the_second_queue_is_promoted(num_queues: int) -> None:
    sched = Scheduler(_plas(starvation_beta=2.0, num_queues=num_queues))
    snapshot = ProgramSnapshot(service=1.0, total_service=1.0)  # Q2: [1, 3)
    call = sched.add_call(CallArrival("s", "p", snapshot=snapshot), now=0.0)
    assert call.level == 1
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    assert sched.schedule(SlotBudget(1), now=1.9).promoted_ids == ()
    assert sched.schedule(SlotBudget(1), now=2.0).promoted_ids == ("s",)


def test_a_waiting_calls_own_progress_pushes_its_promotion_back() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    snapshot = ProgramSnapshot(service=4.0, total_service=4.0)
    sched.add_call(CallArrival("held", "p1", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("other", "p2", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    # The engine ran one token of the waiting call: 4 + 1 = 5 of service, due at 10, not 8.
    sched.update_from_step([CallProgress("held", num_decode_tokens=1)], 1.0, now=1.0)
    assert sched.schedule(SlotBudget(1), now=8.0).promoted_ids == ("other",)
    assert sched.schedule(SlotBudget(1), now=10.0).promoted_ids == ("held",)


def test_an_unknown_call_is_named_in_the_error() -> None:
    with pytest.raises(UnknownCallError, match=r"^unknown call 'x'$"):
        Scheduler().finish_call("x", now=0.0)


def test_fcfs_with_queue_boundaries_configured_still_runs_one_queue() -> None:
    config = SchedulerConfig(policy="fcfs", num_queues=3, queue_boundaries=(1.0, 5.0))  # type: ignore[arg-type]
    sched = Scheduler(config)
    sched.add_call(CallArrival("a", "p"), now=0.0)
    assert sched.queue.lengths() == [1]


def test_a_running_calls_old_deadline_does_not_hold_up_a_starving_one() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    snapshot = ProgramSnapshot(service=4.0, total_service=4.0)
    sched.add_call(CallArrival("runs", "p1", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("waits", "p2", snapshot=snapshot), now=0.0)
    assert [c.call_id for c in sched.schedule(SlotBudget(1), now=0.0).scheduled] == ["runs"]
    # Both were due at 2 * 4 = 8; the one running since 0 is not starving.
    assert sched.schedule(SlotBudget(1), now=8.0).promoted_ids == ("waits",)


def test_a_promoted_call_waiting_again_counts_only_its_wait_since_the_promotion() -> None:
    sched = Scheduler(_plas(starvation_beta=2.0))
    snapshot = ProgramSnapshot(service=4.0, total_service=4.0)
    sched.add_call(CallArrival("s", "p", snapshot=snapshot), now=0.0)
    sched.add_call(CallArrival("f", "fresh"), now=0.0)
    sched.schedule(SlotBudget(1), now=0.0)
    assert sched.schedule(SlotBudget(1), now=8.0).promoted_ids == ("s",)  # waited 8
    sched.finish_call("f", now=8.0)
    sched.schedule(SlotBudget(1), now=8.0)  # s runs, one token: demoted to Q2
    sched.update_from_step([CallProgress("s", num_decode_tokens=1)], 1.0, now=9.0)
    sched.add_call(CallArrival("g", "fresh2"), now=9.0)
    assert [c.call_id for c in sched.schedule(SlotBudget(1), now=9.0).preempted] == ["s"]
    # Waiting again from 9 with 4 + 1 of service: due at 9 + 2 * 5 = 19 (the 8 it waited
    # before its promotion no longer counts).
    assert sched.schedule(SlotBudget(1), now=10.0).promoted_ids == ()
    assert sched.schedule(SlotBudget(1), now=18.9).promoted_ids == ()
    assert sched.schedule(SlotBudget(1), now=19.0).promoted_ids == ("s",)
