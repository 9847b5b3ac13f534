"""What the process table refuses and records, as callers read it (pinned by mutation testing)."""

from __future__ import annotations

import math
import re

import pytest

from autellix_backend.core import (
    CallArrival,
    CallRecord,
    CallStatus,
    DuplicateError,
    InvalidCallError,
    InvalidTransitionError,
    ProcessTable,
    ProgramTracker,
    UnknownCallError,
)
from autellix_backend.core.process_table import MAX_CALL_EVENTS
from autellix_protocol.snapshot import ZERO_SNAPSHOT as ZERO
from autellix_protocol.snapshot import ProgramSnapshot


@pytest.mark.parametrize(
    ("arrival", "message"),
    [
        (CallArrival("", "p"), "call_id must be a non-empty string"),
        (CallArrival("c", ""), "program_id must be a non-empty string"),
        (CallArrival("c", "p", thread_id=""), "thread_id must be a non-empty string"),
        (CallArrival("c", "p", prompt_tokens=-1), "prompt_tokens must be >= 0, got -1"),
        (CallArrival("c", "p", max_tokens=-2), "max_tokens must be >= 0, got -2"),
        (CallArrival("c", "p", oracle_remaining=-0.5), "oracle_remaining must be >= 0, got -0.5"),
        (
            CallArrival("c", "p", oracle_remaining=math.nan),
            "oracle_remaining must be >= 0, got nan",
        ),
        (
            CallArrival("c", "p", snapshot=ProgramSnapshot(total_wait=-1.0)),
            "snapshot total_wait must be a finite number >= 0, got -1.0",
        ),
        (CallArrival("c", "p", parent_ids=("b", "c")), "a call cannot be its own parent"),
    ],
)
def test_a_malformed_call_is_refused_with_what_is_wrong(arrival: CallArrival, message: str) -> None:
    with pytest.raises(InvalidCallError, match=f"^{re.escape(message)}$"):
        arrival.validate()


def test_the_edges_of_a_call_are_accepted() -> None:
    CallArrival("c", "p", prompt_tokens=0, max_tokens=0, oracle_remaining=0.0).validate()


def test_a_call_record_keeps_what_the_call_arrived_with() -> None:
    table = ProcessTable()
    table.start_program("p", now=0.0)
    arrival = CallArrival(
        "c",
        "p",
        thread_id="t",
        parent_ids=("a", "b"),
        prompt_tokens=7,
        max_tokens=9,
        oracle_remaining=3.5,
    )
    call = table.add_call(arrival, now=2.5, priority=1.0)
    assert (call.parent_ids, call.prompt_tokens, call.max_tokens) == (("a", "b"), 7, 9)
    assert (call.arrival_time, call.waiting_since, call.oracle_remaining) == (2.5, 2.5, 3.5)
    assert call.first_scheduled_time is None


def test_a_call_keeps_its_first_start_and_closes_its_preemption_on_restart() -> None:
    table = ProcessTable()
    table.start_program("p", now=0.0)
    call = table.add_call(CallArrival("c", "p"), now=0.0, priority=0.0)
    table.mark_running(call, 1.0)
    table.mark_preempted(call, 2.0)
    table.mark_running(call, 4.0)
    assert call.first_scheduled_time == 1.0
    assert call.preempted_spans == [(2.0, 4.0)] and call.status is CallStatus.RUNNING
    assert call.wait == 3.0  # 0-1 queued, 2-4 preempted


def test_impossible_transitions_are_refused_by_name() -> None:
    table = ProcessTable()
    table.start_program("p", now=0.0)
    call = table.add_call(CallArrival("c", "p"), now=0.0, priority=0.0)
    with pytest.raises(InvalidTransitionError, match=r"^call 'c' is not running$"):
        table.mark_preempted(call, 1.0)
    table.complete_call(call, 1.0)
    with pytest.raises(InvalidTransitionError, match=r"^call 'c' is already FINISHED$"):
        table.mark_running(call, 2.0)
    with pytest.raises(InvalidTransitionError, match=r"^call 'c' is already FINISHED$"):
        table.complete_call(call, 2.0)


def test_a_call_keeps_the_first_64_preemptions_and_promotions_and_counts_them_all() -> None:
    call = CallRecord.arriving(CallArrival("c", "p"), 0.0, priority=0.0, seq=1, snapshot=ZERO)
    for i in range(70):
        call.start(2.0 * i)
        call.preempt(2.0 * i + 1.0)
        call.record_promotion(2.0 * i + 1.5)
    call.start(140.0)
    assert call.num_preemptions == 70
    assert call.preempted_spans is not None and len(call.preempted_spans) == MAX_CALL_EVENTS
    assert call.preempted_spans[:2] == [(1.0, 2.0), (3.0, 4.0)]
    assert call.preempted_spans[-1] == (127.0, 128.0)  # the 64th, closed when it ended
    assert call.promotion_times is not None and len(call.promotion_times) == MAX_CALL_EVENTS
    assert call.promotion_times[:2] == [1.5, 3.5] and call.promotion_times[-1] == 127.5


def test_closing_a_preempted_call_ends_its_preemption() -> None:
    call = CallRecord.arriving(CallArrival("c", "p"), 0.0, priority=0.0, seq=1, snapshot=ZERO)
    call.start(1.0)
    call.preempt(2.0)
    call.close(5.0)  # finished by default
    assert call.status is CallStatus.FINISHED and call.preempted_spans == [(2.0, 5.0)]
    assert call.wait == 4.0 and call.finish_time == 5.0


def test_a_calls_current_wait_includes_the_wait_under_way() -> None:
    call = CallRecord.arriving(CallArrival("c", "p"), 1.0, priority=0.0, seq=1, snapshot=ZERO)
    assert call.current_wait(4.0) == 3.0
    assert call.current_wait(0.5) == 0.0  # a clock read before the arrival adds nothing
    call.start(4.0)
    call.preempt(6.0)
    assert call.current_wait(6.5) == 3.5
    call.start(7.0)
    assert call.current_wait(9.0) == 4.0


def test_the_table_defaults_and_its_refusals() -> None:
    table = ProcessTable()
    assert table.max_finished_calls_per_program == 10_000
    assert table.max_dag_nodes == 10_000 and table.history_size == 1_000
    assert table.num_completions == 0
    assert ProcessTable(max_dag_nodes=5).start_program("p", 0.0).dag.max_nodes == 5
    with pytest.raises(ValueError, match=r"^history_size must be >= 0$"):
        ProcessTable(history_size=-1)
    with pytest.raises(InvalidCallError, match=r"^program_id must be a non-empty string$"):
        table.start_program("", 0.0)
    table.start_program("p", 0.0)
    call = table.add_call(CallArrival("c", "p"), now=0.0, priority=0.0)
    table.complete_call(call, 1.0)
    assert table.num_completions == 1


def test_the_table_adds_up_each_program_and_thread() -> None:
    table = ProcessTable()
    program = table.start_program("p", now=1.0, owner="key-1")
    assert (program.start_time, program.last_arrival, program.owner) == (1.0, 1.0, "key-1")
    calls = [
        table.add_call(CallArrival(cid, "p", thread_id=tid), now=t, priority=0.0)
        for cid, tid, t in (("c1", "t", 2.0), ("c2", "t", 3.0), ("c3", "main", 4.0))
    ]
    assert [c.seq for c in calls] == sorted({c.seq for c in calls})  # arrival order
    thread = program.threads["t"]
    assert (thread.thread_id, thread.num_calls, thread.last_arrival) == ("t", 2, 3.0)
    assert table.add_thread("p", "t") is thread
    with pytest.raises(DuplicateError, match=r"^call 'c1' already exists$"):
        table.add_call(CallArrival("c1", "p"), now=5.0, priority=0.0)
    with pytest.raises(InvalidCallError, match=r"^thread_id must be a non-empty string$"):
        table.add_thread("p", "")
    for call, service, tokens in zip(calls[:2], (2.0, 3.0), (5, 7), strict=True):
        call.service, call.num_output_tokens = service, tokens
        table.complete_call(call, 6.0)
    # waits: c1 2 -> 6, c2 3 -> 6
    assert (program.total_service, program.total_wait) == (5.0, 7.0)
    assert (program.num_finished_calls, program.num_output_tokens) == (2, 12)
    assert (thread.service, thread.wait, thread.active_call_ids) == (5.0, 7.0, set())
    assert table.num_completions == 2 and "c1" not in table.calls and "c3" in table.calls
    assert program.last_completion == 6.0


def test_ending_a_program_drops_its_calls_and_dates_the_end() -> None:
    table = ProcessTable()
    table.start_program("busy", now=0.0)
    table.add_call(CallArrival("c", "busy"), now=1.0, priority=0.0)
    done = table.add_call(CallArrival("d", "busy"), now=2.0, priority=0.0)
    table.complete_call(done, 3.0)
    assert table.end_program("busy").end_time == 3.0  # its last completion
    with pytest.raises(UnknownCallError):
        table.call("c")  # a late report of the in-flight call finds nothing
    table.start_program("idle", now=4.0)
    table.add_call(CallArrival("e", "idle"), now=5.0, priority=0.0)
    assert table.end_program("idle").end_time == 5.0  # no completion: its last arrival


def test_a_live_program_id_is_refused_by_name() -> None:
    table = ProcessTable()
    table.start_program("p", now=0.0)
    with pytest.raises(DuplicateError, match=r"^program 'p' already exists$"):
        table.start_program("p", now=1.0)
    assert table.start_program("p", now=1.0, exist_ok=True).start_time == 0.0


def test_trimmed_calls_leave_no_critical_path_behind() -> None:
    tracker = ProgramTracker("atlas_exact", ProcessTable(max_finished_calls_per_program=2))
    program = tracker.table.start_program("p", now=0.0)
    for i in range(3):
        call = tracker.admit(CallArrival(f"c{i}", "p"), now=float(i))
        tracker.complete(call, i + 1.0, service=1.0)
    # A long program keeps the path ends of its newest finished calls only (bounded memory).
    assert list(program.calls) == ["c1", "c2"] and set(program.call_path_end) == {"c1", "c2"}
