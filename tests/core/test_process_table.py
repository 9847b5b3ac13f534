"""The process table keeps what PAPER.md lists and rejects bad input without changing."""

from __future__ import annotations

import copy

import pytest

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    DuplicateError,
    InvalidCallError,
    ProcessTable,
    SchedulerConfig,
    SlotBudget,
    UnknownCallError,
    UnknownPolicyError,
    UnknownProgramError,
)
from autellix_protocol import ProgramSnapshot
from tests.core._front import Front


def _snapshot(sched: Front) -> tuple[object, ...]:
    table = sched.table
    return (
        sorted(table.programs),
        sorted(table.calls),
        {pid: (p.service, p.num_calls, sorted(p.calls)) for pid, p in table.programs.items()},
        copy.deepcopy(sched.queue.lengths()),
    )


def test_call_for_unknown_program_is_rejected_and_table_unchanged() -> None:
    sched = Front()
    sched.table.start_program("p", now=0.0)
    before = _snapshot(sched)
    with pytest.raises(UnknownProgramError, match="ghost"):
        sched.add_call(CallArrival(call_id="c", program_id="ghost"), now=1.0)
    assert _snapshot(sched) == before


@pytest.mark.parametrize(
    "arrival",
    [
        CallArrival(call_id="c", program_id="p", prompt_tokens=-1),
        CallArrival(call_id="c", program_id="p", max_tokens=-5),
        CallArrival(call_id="", program_id="p"),
        CallArrival(call_id="c", program_id="p", parent_ids=("c",)),
        CallArrival(call_id="c", program_id="p", snapshot=ProgramSnapshot(service=-1.0)),
    ],
)
def test_invalid_calls_raise_typed_errors_and_change_nothing(arrival: CallArrival) -> None:
    sched = Front()
    sched.table.start_program("p", now=0.0)
    before = _snapshot(sched)
    with pytest.raises(InvalidCallError):
        sched.add_call(arrival, now=0.0)
    assert _snapshot(sched) == before


def test_duplicate_ids_are_rejected() -> None:
    sched = Front()
    sched.table.start_program("p", now=0.0)
    sched.add_call(CallArrival(call_id="c", program_id="p"), now=0.0)
    with pytest.raises(DuplicateError):
        sched.table.start_program("p", now=0.0)
    with pytest.raises(DuplicateError):
        sched.add_call(CallArrival(call_id="c", program_id="p"), now=0.0)
    assert sched.table.program("p").num_calls == 1


def test_negative_progress_is_rejected_before_any_update() -> None:
    sched = Front(SchedulerConfig(service_unit="tokens"))
    sched.table.start_program("p", now=0.0)
    sched.add_call(CallArrival(call_id="a", program_id="p"), now=0.0)
    sched.add_call(CallArrival(call_id="b", program_id="p"), now=0.0)
    sched.schedule(SlotBudget(2), now=0.0)
    with pytest.raises(InvalidCallError):
        sched.update_from_step(
            [CallProgress("a", num_decode_tokens=1), CallProgress("b", num_decode_tokens=-1)],
            step_time=1.0,
            now=1.0,
        )
    assert sched.calls["a"].service == 0.0
    with pytest.raises(UnknownCallError):
        sched.update_from_step([CallProgress("zzz", num_decode_tokens=1)], 1.0, 1.0)
    assert sched.calls["a"].service == 0.0


def test_unknown_policy_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownPolicyError, match="known policies"):
        SchedulerConfig(policy="shortest-first")


def test_table_keeps_the_papers_fields() -> None:
    sched = Front(SchedulerConfig(service_unit="tokens"), engine_id="e1")
    sched.table.start_program("p", now=0.0)
    sched.add_call(CallArrival(call_id="c1", program_id="p", thread_id="t1"), now=1.0)
    sched.schedule(SlotBudget(1), now=3.0)
    sched.update_from_step([CallProgress("c1", num_decode_tokens=4)], step_time=0.5, now=3.5)
    sched.finish_call("c1", now=3.5)
    program = sched.table.program("p")
    assert program.service == 4.0
    assert program.total_wait == pytest.approx(2.0)
    assert program.engine_ids == {"e1"}
    assert program.last_arrival == 1.0
    assert program.last_completion == 3.5
    thread = program.threads["t1"]
    assert thread.service == 4.0 and thread.wait == pytest.approx(2.0)
    assert not thread.active_call_ids
    sched.table.end_program("p", now=4.0)
    assert "p" not in sched.table and not sched.table.calls
    ended = sched.table.finished("p")
    assert ended is program and ended.state == "finished" and ended.end_time == 4.0


def test_finished_calls_kept_per_program_are_bounded() -> None:
    sched = Front()
    sched.table.max_finished_calls_per_program = 3
    sched.table.start_program("p", now=0.0)
    for i in range(10):
        sched.add_call(CallArrival(call_id=f"c{i}", program_id="p"), now=float(i))
        sched.schedule(SlotBudget(1), now=float(i))
        sched.finish_call(f"c{i}", now=float(i) + 0.5)
    program = sched.table.program("p")
    assert list(program.calls) == ["c7", "c8", "c9"]
    assert program.num_calls == 10


def test_ended_programs_stay_readable_in_a_bounded_history() -> None:
    table = ProcessTable(history_size=2)
    for name in ("a", "b", "c"):
        table.start_program(name, now=0.0)
        table.end_program(name, now=1.0)
    assert list(table.history) == ["b", "c"]  # the oldest went first
    assert table.finished("a") is None
    ended = table.finished("c")
    assert ended is not None and ended.state == "finished" and ended.end_time == 1.0
    table.start_program("once", now=2.0)
    table.end_program("once", keep=False)  # an untagged call's own program
    assert table.finished("once") is None
    table.start_program("c", now=3.0)  # the id starts a new program, history no longer has it
    assert table.finished("c") is None and table.program("c").state == "running"
    with pytest.raises(ValueError):
        ProcessTable(history_size=-1)
