"""What an engine and its callers read from the core: budgets, decisions, errors, reports.

Each test pins a value an engine loop or an API caller acts on (found by mutation testing:
a changed constant here passed every other test).
"""

from __future__ import annotations

import pytest

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    CallStatus,
    InvalidCallError,
    SchedulerConfig,
    SlotBudget,
    UnknownCallError,
    UnknownProgramError,
)
from tests.core._front import Front


def _front(policy: str = "plas", **overrides: object) -> Front:
    config: dict[str, object] = {
        "policy": policy,
        "service_unit": "tokens",
        "base_quantum": 2.0,
        "num_queues": 4,
        "starvation_beta": None,
    }
    config.update(overrides)
    return Front(SchedulerConfig(**config))  # type: ignore[arg-type]


def _ids(calls: object) -> list[str]:
    return [c.call_id for c in calls]  # type: ignore[attr-defined]


def test_a_slot_budget_reserves_each_calls_tokens_plus_the_one_it_decodes() -> None:
    front = _front()
    front.table.start_program("p", now=0.0)
    for call_id, tokens in (("a", 10), ("b", 10), ("c", 0)):
        front.add_call(CallArrival(call_id, "p", prompt_tokens=tokens), now=0.0)
    # a and b need 11 each: exactly the 22 allowed; c's one decode token no longer fits.
    decision = front.schedule(SlotBudget(3, max_num_tokens=22), now=0.0)
    assert _ids(decision.scheduled) == ["a", "b"]
    assert _ids(front.schedule(SlotBudget(3, max_num_tokens=33), now=0.0).scheduled) == [
        "a",
        "b",
        "c",
    ]


def test_a_slot_budget_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match=r"^max_num_seqs must be at least 1$"):
        SlotBudget(0)


def test_an_idle_engine_gets_an_empty_decision_it_can_iterate() -> None:
    decision = _front().schedule(SlotBudget(4), now=0.0)
    assert (decision.scheduled, decision.started, decision.preempted) == ((), (), ())
    assert decision.promoted_ids == ()


def test_unknown_ids_raise_errors_that_name_them() -> None:
    front = _front()
    with pytest.raises(UnknownProgramError) as program_error:
        front.table.program("ghost")
    assert program_error.value.program_id == "ghost"
    assert str(program_error.value) == "unknown program 'ghost'"
    with pytest.raises(UnknownCallError) as call_error:
        front.table.call("ghost-call")
    assert call_error.value.call_id == "ghost-call"
    assert str(call_error.value) == "unknown call 'ghost-call'"


def test_the_table_keeps_what_the_engine_reported_for_an_ended_call() -> None:
    front = _front()
    for program_id in ("long", "fresh", "gone"):
        front.table.start_program(program_id, now=0.0)
    front.add_call(CallArrival("l", "long"), now=0.0)
    front.schedule(SlotBudget(1), now=0.0)
    front.update_from_step([CallProgress("l", num_decode_tokens=4)], 4.0, 4.0)
    front.add_call(CallArrival("f", "fresh"), now=4.0)
    assert _ids(front.schedule(SlotBudget(1), now=4.0).preempted) == ["l"]
    front.finish_call("f", now=5.0)
    front.schedule(SlotBudget(1), now=5.0)
    front.finish_call("l", now=6.0)
    front.add_call(CallArrival("g", "gone"), now=6.0)
    front.abort_call("g", now=7.0)

    long_program = front.table.program("long")
    assert long_program.calls["l"].status is CallStatus.FINISHED
    assert long_program.calls["l"].num_preemptions == 1
    assert front.table.program("gone").calls["g"].status is CallStatus.ABORTED
    assert front.table.program("fresh").calls["f"].num_preemptions == 0


def test_srpt_needs_the_oracle_and_ranks_by_remaining_work() -> None:
    front = _front("srpt")
    for program_id in ("a", "b"):
        front.table.start_program(program_id, now=0.0)
    with pytest.raises(InvalidCallError, match=r"^SRPT needs oracle_remaining on every call"):
        front.add_call(CallArrival("no-oracle", "a"), now=0.0)
    front.add_call(CallArrival("a1", "a", oracle_remaining=10.0), now=0.0)
    assert _ids(front.schedule(SlotBudget(1), now=0.0).scheduled) == ["a1"]
    front.update_from_step([CallProgress("a1", num_decode_tokens=6)], 6.0, 6.0)
    # a1 has 4 units left, less than b1's 8: it keeps running.
    front.add_call(CallArrival("b1", "b", oracle_remaining=8.0), now=6.0)
    decision = front.schedule(SlotBudget(1), now=6.0)
    assert _ids(decision.scheduled) == ["a1"]
    assert decision.preempted == ()
