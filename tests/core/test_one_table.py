"""One process table at the front end, several engine queues ranking calls by its snapshots.

Each engine keeps only its live calls; what a program did on the other engine reaches it
through the snapshot its calls carry and the refreshes the front end pushes.
"""

from __future__ import annotations

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    ProcessTable,
    ProgramTracker,
    SchedulerConfig,
    SlotBudget,
)
from autellix_backend.routing import EngineView, RouteRequest, make_balancer
from tests.core._front import Front


def _config(**overrides: object) -> SchedulerConfig:
    base: dict[str, object] = {
        "policy": "plas",
        "service_unit": "tokens",
        "base_quantum": 1.0,
        "num_queues": 4,
        "starvation_beta": None,
    }
    base.update(overrides)
    return SchedulerConfig(**base)  # type: ignore[arg-type]


def _two_engines(config: SchedulerConfig) -> tuple[ProgramTracker, dict[str, Front]]:
    tracker = ProgramTracker(config.policy, ProcessTable())
    engines = {e: Front(config, engine_id=e, tracker=tracker) for e in ("e1", "e2")}
    return tracker, engines


def _run(engine: Front, call_id: str, tokens: int, now: float) -> float:
    """Run ``call_id`` alone on ``engine`` for ``tokens`` decode tokens; returns the end time."""
    assert [c.call_id for c in engine.schedule(SlotBudget(1), now=now).scheduled] == [call_id]
    end = now + tokens
    engine.update_from_step([CallProgress(call_id, num_decode_tokens=tokens)], tokens, end)
    engine.finish_call(call_id, now=end)
    return end


def test_a_short_program_overtakes_on_either_engine_a_long_one_served_on_the_other() -> None:
    tracker, engines = _two_engines(_config())
    balancer = make_balancer("round_robin")
    views = [EngineView("e1", 0), EngineView("e2", 0)]
    tracker.table.start_program("long", now=0.0)
    now = 0.0
    placed: list[str] = []
    for i in range(4):  # the long program's calls alternate between the engines
        engine_id = balancer.choose(RouteRequest("long", 16), views)
        placed.append(engine_id)
        engines[engine_id].add_call(CallArrival(f"long-{i}", "long"), now=now)
        now = _run(engines[engine_id], f"long-{i}", 5, now)
    assert placed == ["e1", "e2", "e1", "e2"]
    assert tracker.table.program("long").service == 20.0
    for engine_id, engine in engines.items():
        # The long program's next call arrives first, the fresh program's second.
        tracker.table.start_program(f"short-{engine_id}", now=now)
        engine.add_call(CallArrival(f"long-next-{engine_id}", "long"), now=now)
        engine.add_call(CallArrival(f"short-{engine_id}", f"short-{engine_id}"), now=now)
        order = [c.call_id for c in engine.schedule(SlotBudget(1), now=now).scheduled]
        assert order == [f"short-{engine_id}"]
        assert engine.calls[f"long-next-{engine_id}"].priority == 20.0


def test_anti_starvation_counts_waits_a_program_had_on_the_other_engine() -> None:
    tracker, engines = _two_engines(_config(starvation_beta=2.0))
    e1, e2 = engines["e1"], engines["e2"]
    tracker.table.start_program("old", now=0.0)
    e1.add_call(CallArrival("o1", "old"), now=0.0)
    end = _run(e1, "o1", 4, now=30.0)  # waited 30 on e1 for 4 units of service
    program = tracker.table.program("old")
    assert (program.total_wait, program.total_service) == (30.0, 4.0)
    tracker.table.start_program("fresh", now=end)
    starving = e2.add_call(CallArrival("o2", "old"), now=end)
    assert starving.level == 2
    e2.add_call(CallArrival("f", "fresh"), now=end)
    # (W_program + W_call) / (T_program + T_call) = 30 / 4 >= beta already: promoted at once,
    # where e2's own view (no wait yet) would have held it until 8 time units had passed.
    decision = e2.schedule(SlotBudget(1), now=end)
    assert decision.promoted_ids == ("o2",)
    assert starving.level == 0


def test_service_a_program_attains_elsewhere_moves_its_waiting_calls_down() -> None:
    tracker, engines = _two_engines(_config())
    e1, e2 = engines["e1"], engines["e2"]
    for name in ("p", "busy"):
        tracker.table.start_program(name, now=0.0)
    e2.add_call(CallArrival("hog", "busy"), now=0.0)
    e2.schedule(SlotBudget(1), now=0.0)  # e2 is full: p's call there waits
    e1.add_call(CallArrival("a", "p"), now=0.0)
    waiting = e2.add_call(CallArrival("b", "p"), now=0.0)
    assert waiting.level == 0
    _run(e1, "a", 5, now=0.0)
    assert waiting.snapshot.total_service == 5.0
    assert waiting.level == e2.queue.level_for(5.0) == 2


def test_aborted_and_preempted_calls_count_the_service_they_consumed() -> None:
    tracker, engines = _two_engines(_config(base_quantum=2.0))
    e1 = engines["e1"]
    for name in ("p", "q"):
        tracker.table.start_program(name, now=0.0)
    e1.add_call(CallArrival("c", "p"), now=0.0)
    e1.schedule(SlotBudget(1), now=0.0)
    e1.update_from_step([CallProgress("c", num_decode_tokens=3)], 3.0, 3.0)
    e1.add_call(CallArrival("d", "q"), now=3.0)
    assert [c.call_id for c in e1.schedule(SlotBudget(1), now=3.0).preempted] == ["c"]
    e1.abort_call("c", now=4.0)
    program = tracker.table.program("p")
    assert program.service == program.total_service == 3.0
    assert tracker.table.calls == {"d": tracker.table.call("d")}
    follow = e1.add_call(CallArrival("c2", "p"), now=4.0)
    assert follow.priority == 3.0
