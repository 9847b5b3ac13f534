"""The gateway's program sessions, driven directly with a test clock.

The HTTP tests (``test_programs.py``, ``test_gateway_rules.py``) show these rules through
the API; here each rule is checked at its boundary, where a changed comparison or constant
would otherwise pass: idle expiry at the exact timeout, the table's room, key namespaces,
ephemeral programs, the service counted for a call that lost its engine report.
"""

from __future__ import annotations

import time

import pytest

from autellix_backend.core import CallRecord, CallStatus, InvalidCallError
from autellix_backend.engines.base import EngineUsage, ProgramTag
from autellix_backend.server.config import Limits
from autellix_backend.server.errors import APIError
from autellix_backend.server.programs import (
    ProgramRegistry,
    Session,
    consumed_service,
    outer_call_id,
    place_engine_events,
)
from autellix_backend.server.tagging import CallTags


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _registry(clock: Clock, **limits: int) -> ProgramRegistry:
    return ProgramRegistry("plas", Limits(**limits), idle_timeout_s=10.0, clock=clock)


def _call(
    registry: ProgramRegistry, owner: str | None, tags: CallTags, engine: str = "e0"
) -> tuple[Session, CallRecord, ProgramTag]:
    return registry.open_call(
        owner, tags, prompt_tokens=5, max_tokens=10, choose_engine=lambda _key: engine
    )


def test_programs_of_two_keys_with_one_id_are_two_programs() -> None:
    registry = _registry(Clock())
    alice, new = registry.start("alice", "shared", {"team": "a"})
    assert new
    bob, _ = registry.start("bob", "shared")
    anonymous, _ = registry.start(None, "shared")
    assert (alice.key, bob.key, anonymous.key) == ("alice/shared", "bob/shared", "shared")
    assert (alice.record.owner, alice.record.start_time) == ("alice", 100.0)
    assert abs(alice.created - time.time()) < 60  # wall-clock start, shown by the API
    assert registry.get("alice", "shared") is alice
    assert registry.lookup("alice", "shared") is alice
    assert registry.find("alice", "shared") is alice
    assert registry.find("carol", "shared") is None
    assert [s.program_id for s in registry.sessions("bob")] == ["shared"]
    with pytest.raises(APIError) as error:
        registry.get("carol", "shared")
    assert (error.value.status, error.value.message) == (404, "unknown program 'shared'")


def test_starting_a_program_twice_returns_it_with_the_metadata_merged() -> None:
    clock = Clock()
    registry = _registry(clock)
    first, _ = registry.start("k", "p", {"a": "1"})
    clock.now += 5
    again, new = registry.start("k", "p", {"b": "2"})
    assert again is first and not new
    assert first.metadata == {"a": "1", "b": "2"}
    assert first.last_activity == 105.0
    unnamed, _ = registry.start("k")
    assert unnamed.program_id.startswith("prog-")
    assert len(unnamed.program_id) == len("prog-") + 32


def test_a_program_idle_for_exactly_the_timeout_is_ended() -> None:
    clock = Clock()
    registry = _registry(clock)
    registry.start(None, "old")
    clock.now += 1
    registry.start(None, "young")
    clock.now = 110.0  # "old" was last active exactly 10 s ago, "young" 9 s ago
    assert registry.reap() == 1
    assert registry.find(None, "old") is None
    assert registry.find(None, "young") is not None
    assert len(registry) == 1


def test_a_program_with_a_call_in_flight_is_never_reaped() -> None:
    clock = Clock()
    registry = _registry(clock)
    session, call, _ = _call(registry, None, CallTags(program_id="busy", call_id="c1"))
    clock.now += 60
    assert not registry.is_idle(session)
    assert registry.reap() == 0
    registry.close_call(call, EngineUsage(completion_tokens=3, service=2.0), status="finished")
    assert registry.is_idle(session)
    clock.now += 60
    assert registry.reap() == 1


def test_ended_programs_stay_readable_and_late_reports_do_not_restart_them() -> None:
    ended: list[str] = []
    registry = ProgramRegistry(
        "plas",
        Limits(),
        idle_timeout_s=10.0,
        clock=Clock(),
        on_end=lambda session, record: ended.append(record.program_id),
    )
    session, _ = registry.start("k", "p")
    assert registry.end("k", "p") is session
    assert ended == ["k/p"]
    assert session.ended
    assert registry.lookup("k", "p") is session
    assert registry.ensure("k", "p") is None
    with pytest.raises(APIError):
        registry.get("k", "p")
    with pytest.raises(APIError) as error:
        registry.lookup("other", "p")
    assert (error.value.status, error.value.message) == (404, "unknown program 'p'")
    restarted, new = registry.start("k", "p")
    assert new and restarted is not session
    fresh = registry.ensure("k", "fresh")
    assert fresh is not None and (fresh.program_id, fresh.owner) == ("fresh", "k")
    clock = registry.clock
    assert isinstance(clock, Clock)
    clock.now += 3
    assert registry.ensure("k", "fresh") is fresh  # a live program's span touches it
    assert fresh.last_activity == clock.now


def test_a_full_table_ends_an_idle_program_to_make_room_or_answers_429() -> None:
    registry = _registry(Clock(), max_programs=2)
    registry.start(None, "idle")
    _call(registry, None, CallTags(program_id="busy", call_id="c"))
    registry.start(None, "third")  # "idle" makes room
    assert registry.find(None, "idle") is None
    assert registry.find(None, "third") is not None
    _call(registry, None, CallTags(program_id="third", call_id="c"))
    with pytest.raises(APIError) as error:
        registry.start(None, "fourth")
    assert (error.value.status, error.value.code, error.value.type) == (
        429,
        "too_many_programs",
        "rate_limit_error",
    )
    assert error.value.message == "the process table is full (2 programs with calls in flight)"


def test_an_untagged_call_is_its_own_program_ended_with_the_call() -> None:
    registry = _registry(Clock())
    session, call, tag = _call(registry, "k", CallTags())
    assert session.ephemeral
    assert session.program_id.startswith("anon-")
    assert tag.program_id == session.key == f"k/{session.program_id}"
    registry.close_call(call, EngineUsage(service=1.0), status="finished")
    assert session.ended
    assert registry.find("k", session.program_id) is None
    assert registry.ensure("k", session.program_id) is not None  # not kept as recently ended


def test_a_call_id_in_flight_twice_is_409_and_a_failed_placement_changes_nothing() -> None:
    registry = _registry(Clock())
    _call(registry, None, CallTags(program_id="p", call_id="c1"))
    with pytest.raises(APIError) as error:
        _call(registry, None, CallTags(program_id="p", call_id="c1"))
    assert (error.value.status, error.value.code) == (409, "conflict")
    assert error.value.message == "call 'c1' is already in flight"

    def no_engine(_key: str) -> str:
        raise RuntimeError("no engine")

    with pytest.raises(RuntimeError):
        registry.open_call(
            None, CallTags(program_id="q"), prompt_tokens=1, max_tokens=1, choose_engine=no_engine
        )
    assert registry.find(None, "q") is None


def test_a_call_carries_its_program_tags_to_the_engine() -> None:
    registry = _registry(Clock())
    session, first, _ = _call(registry, "k", CallTags(program_id="p", call_id="a"))
    registry.close_call(first, EngineUsage(completion_tokens=4, service=3.0), status="finished")
    _, call, tag = _call(
        registry, "k", CallTags(program_id="p", thread_id="t2", call_id="b", parent_ids=("a",))
    )
    assert (tag.program_id, tag.thread_id, tag.call_id) == ("k/p", "t2", "k/p b")
    assert tag.parent_ids == ("k/p a",)
    assert tag.snapshot is not None and tag.snapshot.service == 3.0
    assert call.priority == 3.0
    assert call.engine_id == "e0"
    assert call.prompt_tokens == 5 and call.max_tokens == 10
    assert outer_call_id(call.call_id) == "b"
    assert ("a", "b") in session.dag.edges
    assert (session.dag.nodes["b"].kind, session.dag.nodes["b"].thread_id) == ("llm", "t2")


def test_closing_a_call_records_its_tokens_service_and_status() -> None:
    clock = Clock()
    registry = _registry(clock)
    session, done, _ = _call(registry, None, CallTags(program_id="p", call_id="done"))
    registry.call_started(done)
    assert done.first_scheduled_time == 100.0
    clock.now = 101.0
    registry.call_started(done)  # a second chunk does not move the start
    assert done.first_scheduled_time == 100.0
    registry.close_call(done, EngineUsage(completion_tokens=7, service=0.5), status="finished")
    assert (done.num_output_tokens, done.service, done.status) == (7, 0.5, CallStatus.FINISHED)
    assert session.dag.nodes["done"].status == "finished"
    registry.close_call(done, EngineUsage(service=9.0), status="error")  # already closed
    assert done.service == 0.5

    _, cut, _ = _call(registry, None, CallTags(program_id="p", call_id="cut"))
    registry.call_started(cut)
    clock.now = 104.0
    registry.close_call(cut, None, status="aborted")  # no engine report: it ran 3 s
    assert cut.service == 3.0
    assert cut.status is CallStatus.ABORTED
    assert session.dag.nodes["cut"].status == "aborted"
    assert session.record.service == 3.5
    assert session.last_activity == 104.0


def test_the_service_of_a_call_without_a_report_is_the_time_it_ran() -> None:
    registry = _registry(Clock())
    _, call, _ = _call(registry, None, CallTags(program_id="p"))
    assert consumed_service(call, 200.0) == 0.0  # never started: nothing consumed
    registry.call_started(call)
    assert consumed_service(call, 102.5) == 2.5
    call.service = 4.0
    assert consumed_service(call, 102.5) == 4.0


def test_engine_events_are_placed_on_the_tables_clock() -> None:
    registry = _registry(Clock())
    _, call, _ = _call(registry, None, CallTags(program_id="p"))
    place_engine_events(call, {"preemptions": [[1.0, 2.0]], "promotions": [0.5]})
    assert call.preempted_spans == [(101.0, 102.0)]
    assert call.promotion_times == [100.5]
    place_engine_events(call, {"preemptions": "bad", "promotions": ["x"]})
    assert call.promotion_times == [100.5]


def test_sessions_list_the_most_recently_active_last() -> None:
    clock = Clock()
    registry = _registry(clock)
    for name in ("a", "b", "c"):
        registry.start(None, name)
    clock.now += 1
    registry.start(None, "a")
    assert [s.program_id for s in registry.sessions(None)] == ["b", "c", "a"]
    assert isinstance(registry.sessions(None)[0], Session)


def test_the_limits_bound_each_programs_calls_and_dag_and_the_ended_history() -> None:
    registry = _registry(Clock(), max_calls_per_program=2, max_dag_nodes=2, program_history=1)
    for i in range(3):
        session, call, _ = _call(registry, None, CallTags(program_id="p", call_id=f"c{i}"))
        registry.close_call(call, EngineUsage(service=1.0), status="finished")
    assert list(session.record.calls) == ["p c1", "p c2"]
    assert list(session.dag.nodes) == ["c1", "c2"]
    registry.start(None, "q")
    registry.end(None, "p")
    registry.end(None, "q")
    assert registry.lookup(None, "q").program_id == "q"
    with pytest.raises(APIError):
        registry.lookup(None, "p")  # only the newest ended program is kept


def test_a_refused_call_leaves_no_new_program_and_keeps_an_existing_one() -> None:
    registry = _registry(Clock())
    seen: list[str] = []

    def engine_for(key: str) -> str:
        seen.append(key)
        return "e1"

    registry.start("k", "old")
    for program_id in ("new", "old"):
        with pytest.raises(InvalidCallError):
            registry.open_call(
                "k",
                CallTags(program_id=program_id),
                prompt_tokens=-1,
                max_tokens=1,
                choose_engine=engine_for,
            )
    assert seen == ["k/new", "k/old"]  # the balancer places calls by their program's key
    assert registry.find("k", "new") is None
    assert registry.find("k", "old") is not None
    session, _, _ = _call(registry, "k", CallTags(program_id="by-call"))
    assert session.owner == "k"
    assert [s.program_id for s in registry.sessions("k")] == ["old", "by-call"]


def test_a_call_closed_while_its_program_restarted_does_not_touch_the_new_program() -> None:
    registry = _registry(Clock())
    _, stale, _ = _call(registry, "k", CallTags(program_id="p", call_id="c"))
    registry.end("k", "p")
    fresh, _ = registry.start("k", "p")
    registry.close_call(stale, EngineUsage(service=5.0), status="finished")
    assert fresh.record.service == 0.0
    assert registry.is_idle(fresh)
    _, gone, _ = _call(registry, "k", CallTags(program_id="p", call_id="gone"))
    registry.close_call(gone, None, status="aborted")
    registry.call_started(gone)  # a late first chunk of a closed call changes nothing
    assert gone.first_scheduled_time is None


def test_ending_a_program_stamps_its_row_and_tells_the_hook() -> None:
    clock = Clock()
    ended: list[tuple[Session, str]] = []
    registry = ProgramRegistry(
        "plas",
        Limits(),
        idle_timeout_s=10.0,
        clock=clock,
        on_end=lambda session, record: ended.append((session, record.program_id)),
    )
    session, _ = registry.start("k", "p")
    registry.add_thread(session, "t1", "main")
    assert "t1" in registry.table.program("k/p").threads
    assert session.dag.thread_parents["t1"] == "main"
    clock.now = 107.0
    registry.end("k", "p")
    assert ended == [(session, "k/p")]
    assert session.record.end_time == 107.0
    assert registry.table.finished("k/p") is session.record
    untagged, call, _ = _call(registry, "k", CallTags())
    registry.close_call(call, EngineUsage(service=1.0), status="finished")
    assert registry.table.finished(untagged.key) is None  # untagged programs leave no history
